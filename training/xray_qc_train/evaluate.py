"""Leave-one-bundle-out (paper §3): for each conversion method and each bundle, train on the
other bundles and score the held-out one. Writes the paper's Table 1 for any labelled data."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from . import station
from .data import Dataset, indices_by_bundle
from .metrics import balanced_accuracy, confusion, pooled
from .preprocess import Bounds
from .train import Recipe, extract_features, fit, predict

Log = Callable[[str], None]


@dataclass
class FeatureCache:
    """Backbone features per (conversion, bounds): folds whose bounds agree share one extraction."""
    backbone: nn.Module
    ds: Dataset
    recipe: Recipe
    device: torch.device
    log: Log
    store: Dict[Tuple[str, Optional[Bounds]], torch.Tensor] = field(default_factory=dict)

    def get(self, conversion: str, bounds: Optional[Bounds]) -> torch.Tensor:
        key = (conversion, bounds if conversion in ('global', 'mixed') else None)
        if key not in self.store:
            label = f'{conversion}' + (f' bounds {bounds[0]:g},{bounds[1]:g}' if key[1] else '')
            step = max(1, len(self.ds.samples) // 10)
            self.store[key] = extract_features(
                self.backbone, self.ds.samples, conversion, key[1], self.recipe, self.device,
                lambda i, n: self.log(f'features ({label}): {i}/{n}') if i % step == 0 or i == n else None)
        return self.store[key]


def fold_bounds(ds: Dataset, train_idx: Sequence[int], bounds_from, cache: Dict[tuple, Bounds]) -> Bounds:
    """Global bounds from the fold's training bundles (`train`), from all data (`all`, the paper),
    or the given (MIN, MAX) for every fold."""
    if isinstance(bounds_from, tuple):
        return bounds_from
    idx = tuple(range(len(ds.samples))) if bounds_from == 'all' else tuple(train_idx)
    if idx not in cache:
        cache[idx] = station.bounds([ds.samples[i].path for i in idx])[0]
    return cache[idx]


@dataclass
class FoldResult:
    method: str
    bundle: str
    bounds: Optional[Bounds]
    confusion: Dict[str, int]
    ba: float


def lobo(ds: Dataset, methods: Sequence[str], features: FeatureCache, fc: nn.Linear, recipe: Recipe, seed: int,
         bounds_from: str, log: Log) -> Tuple[List[FoldResult], Dict[str, np.ndarray]]:
    """Out-of-fold p_abnormal per method (aligned with ds.samples) and each fold's counts."""
    labels = np.array([s.label for s in ds.samples])
    folds = indices_by_bundle(ds.samples)
    bounds_cache: Dict[tuple, Bounds] = {}
    results: List[FoldResult] = []
    oof: Dict[str, np.ndarray] = {}
    for method in methods:
        p = np.full(len(ds.samples), np.nan)
        for k, (bundle, test_idx) in enumerate(folds.items()):
            train_idx = [i for b, idx in folds.items() if b != bundle for i in idx]
            bounds = fold_bounds(ds, train_idx, bounds_from, bounds_cache) if method in ('global', 'mixed') else None
            feats = features.get(method, bounds)
            log(f'fold {k + 1}/{len(folds)} ({method}): holding out {bundle}, training on {len(train_idx)} captures')
            clf = fit(fc, feats[train_idx], labels[train_idx], recipe, seed, features.device)
            p[test_idx] = predict(clf, feats[test_idx])
            c = confusion(labels[test_idx], p[test_idx])
            results.append(FoldResult(method, bundle, bounds, c, balanced_accuracy(c)))
        oof[method] = p
    return results, oof


def table(results: Sequence[FoldResult], methods: Sequence[str], bundles: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """BA in percent per bundle and method, and `Overall` over the pooled counts."""
    rows: Dict[str, Dict[str, float]] = {b: {} for b in bundles}
    rows['Overall'] = {}
    for m in methods:
        mine = [r for r in results if r.method == m]
        for r in mine:
            rows[r.bundle][m] = 100 * r.ba
        rows['Overall'][m] = 100 * balanced_accuracy(pooled(r.confusion for r in mine))
    return rows


RULES = ('Per bundle: balanced accuracy = the mean recall over the classes present in that bundle '
         '(scikit-learn\'s balanced_accuracy_score); a bundle with one class is that class\'s recall. '
         'Overall: balanced accuracy over the TP/FP/TN/FN pooled across bundles, as the paper pools them. '
         'A capture is abnormal when p_abnormal ≥ 0.5 (argmax).')


def write_oof_predictions(path: Path, ds: Dataset, methods: Sequence[str], oof: Dict[str, np.ndarray]) -> None:
    """`file,bundle,label,method,p_abnormal`: each file's out-of-fold score per method, at full
    precision, so that p ≥ 0.5 (or any threshold) recomputes exactly."""
    with open(path, 'w', newline='') as f:
        w = csv.writer(f, lineterminator='\n')
        w.writerow(['file', 'bundle', 'label', 'method', 'p_abnormal'])
        for m in methods:
            for s, p in zip(ds.samples, oof[m]):
                w.writerow([s.file, s.bundle, ('normal', 'abnormal')[s.label], m, repr(float(p))])


def write_report(out: Path, ds: Dataset, methods: Sequence[str], results: Sequence[FoldResult],
                 oof: Dict[str, np.ndarray], meta: dict) -> Dict[str, Dict[str, float]]:
    """The four report files; returns the table (BA % per bundle and method, and Overall)."""
    rows = table(results, methods, ds.bundles)
    with open(out / 'table1.csv', 'w', newline='') as f:
        w = csv.writer(f, lineterminator='\n')
        w.writerow(['bundle', *methods])
        for b, row in rows.items():
            w.writerow([b, *(f'{row[m]:.2f}' for m in methods)])
    names = {'naive': 'Method 1 (naive)', 'global': 'Method 2 (global)', 'local': 'Method 3 (local)', 'mixed': 'Method 4 (mixed)'}
    lines = ['| Bundle | ' + ' | '.join(names[m] for m in methods) + ' |', '|---|' + '---:|' * len(methods)]
    for b, row in rows.items():
        best = max(row[m] for m in methods if not np.isnan(row[m])) if any(not np.isnan(row[m]) for m in methods) else None
        cells = [f'**{row[m]:.2f}**' if best is not None and row[m] == best else f'{row[m]:.2f}' for m in methods]
        lines.append(f'| {"**Overall**" if b == "Overall" else b} | ' + ' | '.join(cells) + ' |')
    single = ds.single_class_bundles()
    md = ['# Leave-one-bundle-out balanced accuracy (%)', '', *lines, '', RULES, '',
          'Best per row in bold. ' + (f'Bundles with one class only: {", ".join(single)}.' if single else 'Every bundle has both classes.'),
          '', f'Data: {len(ds.samples)} captures in {len(ds.bundles)} bundles; bounds from {meta["bounds_from"]}; '
          f'input {meta["recipe"]["height"]}×{meta["recipe"]["width"]}; {meta["recipe"]["epochs"]} epochs; '
          f'backbone {meta["backbone"]["kind"]}; seed {meta["seed"]}.', '']
    (out / 'table1.md').write_text('\n'.join(md))
    folds = [{'method': r.method, 'bundle': r.bundle, 'bounds': list(r.bounds) if r.bounds else None,
              **r.confusion, 'ba': round(100 * r.ba, 4)} for r in results]
    (out / 'folds.json').write_text(json.dumps({**meta, 'rules': RULES, 'folds': folds}, indent=2) + '\n')
    write_oof_predictions(out / 'predictions.csv', ds, methods, oof)
    return rows
