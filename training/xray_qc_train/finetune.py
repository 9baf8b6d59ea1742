"""End-to-end training (`--fine-tune`): the backbone trains with fc 1000 and the head.

The paper freezes an ImageNet backbone. Without ImageNet weights (an offline host, synthetic data)
the frozen random backbone still separates the classes, but its last block's grid is dominated by
the bright substrate border, so Grad-CAM points at the border, not the defect (`npm run
bench:heatmap`, docs/training.md). Training the backbone too makes its features the defect's own.

Each capture is preprocessed once (N × 3 × H × W float32 in memory); every epoch draws the paper's
50 % horizontal and 50 % vertical flips per image; batch-norm trains in batch mode and is exported
in eval mode, with running statistics recomputed over the training images at the end."""
from __future__ import annotations

import copy
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from .data import Sample
from .model import Classifier
from .preprocess import Bounds, preprocess, read_capture
from .train import Recipe, optimisation, step


def load_tensors(samples: Sequence[Sample], conversion: str, bounds: Optional[Bounds], recipe: Recipe,
                 progress: Callable[[int, int], None] = lambda i, n: None) -> torch.Tensor:
    """N × 3 × H × W, each capture preprocessed as the station does."""
    out = torch.empty(len(samples), 3, recipe.height, recipe.width)
    for i, s in enumerate(samples):
        out[i] = torch.from_numpy(preprocess(read_capture(s.path), conversion, bounds, recipe.height, recipe.width))
        progress(i + 1, len(samples))
    return out


def flip_batch(x: torch.Tensor, h: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Each image of B × 3 × H × W flipped horizontally where h, vertically where v (bool, B)."""
    x = torch.where(h[:, None, None, None], torch.flip(x, [3]), x)
    return torch.where(v[:, None, None, None], torch.flip(x, [2]), x)


def zero_init_residual(net: nn.Module) -> None:
    """Each residual block's last batch-norm scale set to 0, so that a random network starts as
    the identity through its blocks (Goyal et al. 2017; torchvision's `zero_init_residual`): from a
    random start it trains in far fewer steps."""
    with torch.no_grad():
        for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
            for block in layer:
                block.bn2.weight.zero_()


@torch.no_grad()
def recalibrate_batch_norm(net: nn.Module, x: torch.Tensor, batch: int, device: torch.device) -> None:
    """Every batch-norm's running statistics recomputed over x with the final weights (a cumulative
    average, unflipped images), as "precise BN" does: the moving averages of training trail weights
    that kept changing, and the exported network, which uses them, then scores differently from the
    one that trained (all normal on a small set whose training loss was 0.006)."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    net.train()
    for k in range(0, len(x), batch):
        net(x[k:k + batch].to(device))
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    net.eval()


def fit_end_to_end(backbone: nn.Module, fc: nn.Linear, x: torch.Tensor, labels: np.ndarray, recipe: Recipe, seed: int,
                   device: torch.device, random_start: bool = False,
                   progress: Callable[[int, int, float], None] = lambda e, n, loss: None) -> Tuple[nn.Module, Classifier]:
    """(backbone, classifier), both trained on x (N × 3 × H × W) and returned in eval mode on the CPU;
    the inputs are not changed. The standardisation stays the identity: batch-norm in batch mode
    gives features of another scale than the starting backbone in eval mode, so statistics fitted on
    those would blow the first steps' logits up (a loss near 6 where chance is 0.69)."""
    torch.manual_seed(seed)
    net = copy.deepcopy(backbone).to(device)
    if random_start:
        zero_init_residual(net)
    for p in net.parameters():
        p.requires_grad_(True)
    clf = Classifier(copy.deepcopy(fc)).to(device)
    y = torch.as_tensor(labels, dtype=torch.long)
    loss_fn, opt, sched = optimisation(recipe, y, list(net.parameters()) + [p for p in clf.parameters() if p.requires_grad], device)
    g = torch.Generator().manual_seed(seed)
    n = len(y)
    for epoch in range(recipe.epochs):
        net.train()
        clf.train()
        order = torch.randperm(n, generator=g)
        h = torch.rand(n, generator=g) < 0.5
        v = torch.rand(n, generator=g) < 0.5
        total = 0.0
        for k in range(0, n, recipe.batch_size):
            idx = order[k:k + recipe.batch_size]
            if len(idx) < 2:  # batch-norm needs two images in training mode
                continue
            xb = flip_batch(x[idx], h[idx], v[idx]).to(device)
            total += step(opt, loss_fn(clf(net(xb)), y[idx].to(device))) * len(idx)
        sched.step()
        progress(epoch + 1, recipe.epochs, total / n)
    for p in net.parameters():
        p.requires_grad_(False)
    recalibrate_batch_norm(net, x, recipe.batch_size, device)
    return net.eval().cpu(), clf.eval().cpu()
