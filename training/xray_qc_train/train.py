"""The paper's recipe on a frozen backbone: pooled features computed once per image and flip
variant (none, h, v, hv), then every epoch trains fc 1000 + head on the cache, drawing one variant
per image with the paper's 50 % horizontal and 50 % vertical flips."""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from .data import Sample
from .model import Classifier
from .preprocess import Bounds, preprocess, read_capture

VARIANTS = ('none', 'h', 'v', 'hv')


@dataclass(frozen=True)
class Recipe:
    epochs: int = 50
    lr: float = 1e-3
    lr_step: int = 10
    lr_decay: float = 0.5
    optimizer: str = 'adam'
    batch_size: int = 16
    class_weights: str = 'none'  # or 'balanced'
    height: int = 2000
    width: int = 1000
    fine_tune: bool = False  # the backbone trains too (finetune.py)

    def as_dict(self) -> dict:
        return asdict(self)


def flips(t: torch.Tensor) -> torch.Tensor:
    """The four variants of a 3×H×W tensor, stacked: none, horizontal, vertical, both."""
    return torch.stack([t, torch.flip(t, [2]), torch.flip(t, [1]), torch.flip(t, [1, 2])])


@torch.no_grad()
def extract_features(backbone: nn.Module, samples: Sequence[Sample], conversion: str, bounds: Optional[Bounds],
                     recipe: Recipe, device: torch.device,
                     progress: Callable[[int, int], None] = lambda i, n: None) -> torch.Tensor:
    """N × 4 × 512 pooled features (CPU), one row per sample, one column per flip variant."""
    backbone.eval().to(device)
    out = torch.empty(len(samples), len(VARIANTS), 512)
    for i, s in enumerate(samples):
        t = torch.from_numpy(preprocess(read_capture(s.path), conversion, bounds, recipe.height, recipe.width))
        out[i] = backbone(flips(t).to(device)).cpu()
        progress(i + 1, len(samples))
    return out


def optimisation(recipe: Recipe, y: torch.Tensor, params: Sequence[torch.nn.Parameter], device: torch.device):
    """The recipe's loss (cross-entropy, optionally class-weighted), optimiser and step schedule."""
    weight = None
    if recipe.class_weights == 'balanced':
        counts = torch.bincount(y, minlength=2).float()
        weight = (len(y) / (2 * torch.clamp(counts, min=1))).to(device)
    if recipe.optimizer == 'adam':
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=recipe.lr)
    elif recipe.optimizer == 'sgd':
        opt = torch.optim.SGD(params, lr=recipe.lr, momentum=0.9)
    else:
        raise ValueError(f'unknown optimizer {recipe.optimizer!r}')
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=recipe.lr_step, gamma=recipe.lr_decay)
    return nn.CrossEntropyLoss(weight=weight), opt, sched


def step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> float:
    """One optimiser step on `loss`; its value."""
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss)


def fit(fc: nn.Linear, feats: torch.Tensor, labels: np.ndarray, recipe: Recipe, seed: int, device: torch.device,
        progress: Callable[[int, int, float], None] = lambda e, n, loss: None) -> Classifier:
    """Trains a classifier (standardisation from `feats`, a copy of `fc`, a new head) on N × 4 × 512."""
    torch.manual_seed(seed)
    clf = Classifier(copy.deepcopy(fc))
    clf.fit_standardize(feats.reshape(-1, feats.shape[-1]))
    clf.to(device).train()
    y = torch.as_tensor(labels, dtype=torch.long)
    loss_fn, opt, sched = optimisation(recipe, y, [p for p in clf.parameters() if p.requires_grad], device)
    g = torch.Generator().manual_seed(seed)
    n = len(y)
    for epoch in range(recipe.epochs):
        order = torch.randperm(n, generator=g)
        h = (torch.rand(n, generator=g) < 0.5).long()
        v = (torch.rand(n, generator=g) < 0.5).long()
        variant = h + 2 * v  # the index into VARIANTS
        total = 0.0
        for k in range(0, n, recipe.batch_size):
            idx = order[k:k + recipe.batch_size]
            x = feats[idx, variant[idx]].to(device)
            total += step(opt, loss_fn(clf(x), y[idx].to(device))) * len(idx)
        sched.step()
        progress(epoch + 1, recipe.epochs, total / n)
    return clf.eval().cpu()


@torch.no_grad()
def predict(clf: Classifier, feats: torch.Tensor) -> np.ndarray:
    """p_abnormal for the unflipped variant of each row."""
    return torch.softmax(clf(feats[:, 0]), dim=1)[:, 1].numpy().astype(np.float64)
