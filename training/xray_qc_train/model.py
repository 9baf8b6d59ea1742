"""The paper's network: torchvision ResNet-34 (frozen, eval mode) whose pooled 512-d features go
through a fixed standardisation, its fc (1000, trained) and the head FC 512 → ReLU → 256 → ReLU
→ 2. The backbone's output is computed once per image and flip (train.py); only `Classifier`
trains — unless `--fine-tune` trains the backbone too (finetune.py)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torchvision

from .data import sha256_file

FEATURES = 512


class Standardize(nn.Module):
    """(x − mean) / std per feature, with training-set statistics: a fixed affine in the graph."""

    def __init__(self, n: int = FEATURES) -> None:
        super().__init__()
        self.register_buffer('mean', torch.zeros(n))
        self.register_buffer('std', torch.ones(n))

    def fit(self, feats: torch.Tensor) -> None:
        mean = feats.mean(0)
        std = feats.std(0)
        floor = torch.clamp(std.max() * 1e-4, min=1e-12)  # a constant feature is not blown up
        self.mean.copy_(mean)
        self.std.copy_(torch.maximum(std, floor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """Everything after the backbone's pooling: standardise, fc 1000, the paper's head (logits)."""

    def __init__(self, fc: nn.Linear) -> None:
        super().__init__()
        self.standardize = Standardize(fc.in_features)
        self.fc = fc
        self.head = nn.Sequential(nn.Linear(1000, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 2))

    def fit_standardize(self, feats: torch.Tensor) -> None:
        """Sets the statistics and keeps fc's function: fc'(z) = W·(std·z + mean) + b, so an
        ImageNet fc starts where it was trained; a random one is merely rescaled."""
        self.standardize.fit(feats)
        with torch.no_grad():
            w = self.fc.weight.clone()
            self.fc.bias.add_(w @ self.standardize.mean)
            self.fc.weight.mul_(self.standardize.std)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.head(self.fc(self.standardize(feats)))


class ElectrodeNet(nn.Module):
    """Backbone + classifier + softmax: what is exported (input 1×3×H×W, output probs 1×2)."""

    def __init__(self, backbone: nn.Module, classifier: Classifier) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(self.backbone(x)), dim=1)


def build_backbone(kind: str, weights_file: Optional[Path], seed: int) -> Tuple[nn.Module, nn.Linear, dict]:
    """ResNet-34 without its fc (returns pooled features), its fc, and what the model card says.

    `imagenet` needs torchvision's ImageNet weights: `weights_file`, or torchvision's own cache;
    nothing is ever downloaded. `random` is seeded (for tests and synthetic data)."""
    torch.manual_seed(seed)
    net = torchvision.models.resnet34(weights=None)
    info: dict = {'kind': kind}
    if kind == 'imagenet':
        path = Path(weights_file) if weights_file else _cached_imagenet()
        if path is None or not path.is_file():
            raise FileNotFoundError('ImageNet weights not found: pass --backbone-weights FILE.pth '
                                    '(torchvision resnet34-b627a593.pth); nothing is downloaded')
        state = torch.load(str(path), map_location='cpu')
        net.load_state_dict(state.get('state_dict', state) if isinstance(state, dict) else state)
        info.update(weights_file=path.name, weights_sha256=sha256_file(path), untrained_backbone=False)
    elif kind == 'random':
        info.update(seed=seed, untrained_backbone=True)
    elif kind == 'folded':
        if weights_file is None or not Path(weights_file).is_dir():
            raise FileNotFoundError('--backbone folded needs --backbone-weights DIR (from xray-qc model demo --backbone-out DIR)')
        load_folded(net, Path(weights_file))
        info.update(weights_dir=Path(weights_file).name, weights_sha256=_sha256_dir(Path(weights_file)), untrained_backbone=True,
                    note="the station demo model's seeded backbone (batch-norm folded into the convolutions)")
    else:
        raise ValueError(f'unknown backbone {kind!r} (imagenet, random or folded)')
    fc = net.fc
    net.fc = nn.Identity()
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval(), fc, info


def torchvision_convs(net: nn.Module):
    """(conv, batch-norm) pairs in torchvision's order: the stem, then per block conv1, conv2, downsample."""
    pairs = [(net.conv1, net.bn1)]
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for block in layer:
            pairs += [(block.conv1, block.bn1), (block.conv2, block.bn2)]
            if block.downsample is not None:
                pairs.append((block.downsample[0], block.downsample[1]))
    return pairs


def load_folded(net: nn.Module, folder: Path) -> None:
    """Weights whose batch-norm is folded into the convolutions (conv_NNN.weight/bias.npy, in
    torchvision's order): each conv gets its weight, its batch-norm becomes the identity plus the
    bias (running_var = 1 − eps, so that √(var + eps) = 1)."""
    import numpy as np
    pairs = torchvision_convs(net)
    files = sorted(folder.glob('conv_*.weight.npy'))
    if len(files) != len(pairs):
        raise FileNotFoundError(f'{folder}: {len(files)} convolutions, ResNet-34 has {len(pairs)}')
    with torch.no_grad():
        for k, (conv, bn) in enumerate(pairs):
            w = torch.from_numpy(np.load(folder / f'conv_{k:03d}.weight.npy'))
            b = torch.from_numpy(np.load(folder / f'conv_{k:03d}.bias.npy'))
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise FileNotFoundError(f'conv_{k:03d}: shape {tuple(w.shape)}, expected {tuple(conv.weight.shape)}')
            conv.weight.copy_(w)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
            bn.weight.fill_(1.0)
            bn.bias.copy_(b)


def _sha256_dir(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.glob('*.npy')):
        h.update(f.name.encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def _cached_imagenet() -> Optional[Path]:
    p = Path(torch.hub.get_dir()) / 'checkpoints' / 'resnet34-b627a593.pth'
    return p if p.is_file() else None


