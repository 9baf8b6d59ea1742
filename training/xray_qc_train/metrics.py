"""Balanced accuracy as the paper reports it, and operating points chosen from out-of-fold scores.

A capture is abnormal when p_abnormal ≥ threshold (0.5 = the paper's argmax)."""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np


def confusion(labels: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> Dict[str, int]:
    flag = p >= threshold
    pos = labels == 1
    return {'tp': int(np.sum(flag & pos)), 'fp': int(np.sum(flag & ~pos)),
            'tn': int(np.sum(~flag & ~pos)), 'fn': int(np.sum(~flag & pos))}


def balanced_accuracy(c: Dict[str, int]) -> float:
    """Mean recall over the classes present (scikit-learn's balanced_accuracy_score)."""
    recalls = []
    if c['tp'] + c['fn'] > 0:
        recalls.append(c['tp'] / (c['tp'] + c['fn']))
    if c['tn'] + c['fp'] > 0:
        recalls.append(c['tn'] / (c['tn'] + c['fp']))
    return float(np.mean(recalls)) if recalls else float('nan')


def pooled(cs) -> Dict[str, int]:
    out = {'tp': 0, 'fp': 0, 'tn': 0, 'fn': 0}
    for c in cs:
        for k in out:
            out[k] += c[k]
    return out


def rates(labels: np.ndarray, p: np.ndarray, threshold: float) -> Dict[str, float]:
    c = confusion(labels, p, threshold)
    tpr = c['tp'] / max(1, c['tp'] + c['fn'])
    tnr = c['tn'] / max(1, c['tn'] + c['fp'])
    return {'threshold': threshold, 'tpr': tpr, 'tnr': tnr, 'miss_rate': 1 - tpr, 'ba': balanced_accuracy(c), **c}


def operating_point(spec: str, labels: np.ndarray, p: np.ndarray) -> float:
    """`argmax` → 0.5; `balanced` → the score t (flag p ≥ t) that maximises BA over the out-of-fold
    scores, the one nearest 0.5 among equals; `miss-rate:R` → the highest t whose miss rate on
    abnormal captures (p < t) is ≤ R: the ⌊R·A⌋-th smallest abnormal score (0-based)."""
    if spec == 'argmax':
        return 0.5
    if spec == 'balanced':
        candidates = np.unique(np.concatenate([p, [0.5]]))
        bas = np.array([balanced_accuracy(confusion(labels, p, t)) for t in candidates])
        best = candidates[bas == bas.max()]
        return float(best[np.argmin(np.abs(best - 0.5))])
    if spec.startswith('miss-rate:'):
        r = float(spec.split(':', 1)[1])
        abnormal = np.sort(p[labels == 1])
        k = int(np.floor(r * len(abnormal) + 1e-12))
        return float(abnormal[k]) if k < len(abnormal) else 1.0
    raise ValueError(f'unknown operating point {spec!r} (argmax, balanced, miss-rate:R)')


def review_band(spec: Optional[str], threshold: float, p: np.ndarray) -> Optional[Tuple[float, float]]:
    """`auto:F`: [t − d, t + d) clipped to [0, 1], with d the largest of the scores' distances
    |p − t| (and 1) for which the band holds at most ⌊F·N⌋ of the N out-of-fold scores; None when
    no band holds any score within that allowance."""
    if not spec:
        return None
    if not spec.startswith('auto:'):
        raise ValueError(f'unknown review band {spec!r} (auto:F)')
    f = float(spec.split(':', 1)[1])
    allowed = int(np.floor(f * len(p) + 1e-12))
    # grow d over the sorted distances; inside means t − d ≤ p < t + d
    dist = np.sort(np.abs(p - threshold))
    best = 0.0
    for d in np.unique(np.concatenate([dist, [1.0]])):
        if count_inside(p, threshold, d) <= allowed:
            best = float(d)
        else:
            break
    if best == 0.0:
        return None
    return max(0.0, threshold - best), min(1.0, threshold + best)


def count_inside(p: np.ndarray, threshold: float, d: float) -> int:
    lo, hi = max(0.0, threshold - d), min(1.0, threshold + d)
    return int(np.sum((p >= lo) & (p < hi)))


def histogram(p: np.ndarray, bins: int = 20) -> Dict[str, list]:
    counts, edges = np.histogram(p, bins=bins, range=(0.0, 1.0))
    return {'edges': [round(float(e), 4) for e in edges], 'counts': [int(c) for c in counts]}
