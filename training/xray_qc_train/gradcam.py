"""Grad-CAM of the abnormal-minus-normal logit, two ways: as forward operations, so that it exports
to ONNX beside the probabilities (`HeatmapNet`), and with autograd, the reference it is tested
against (`grad_cam_autograd`).

Global average pooling is linear, so ∂y/∂A_k,ij = ∂y/∂z_k / (h·w) for the pooled vector z. The
classifier is an affine map (standardise, fc 1000) followed by FC 512 → ReLU → FC 256 → ReLU →
FC 2, whose Jacobian is d·diag(m3)·W3·diag(m2)·W2·W1 / std with d = W4[abnormal] − W4[normal]
and m the ReLU masks. The heat map is ReLU(Σ_k w_k·A_k), w = ∂y/∂z / (h·w): 1×h×w."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn as nn

from .model import Classifier

ABNORMAL, NORMAL = 1, 0


def last_block(backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torchvision ResNet up to its last block: A, 1×512×h×w (63×32 at 2000×1000)."""
    b = backbone
    x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
    return b.layer4(b.layer3(b.layer2(b.layer1(x))))


def head_layers(clf: Classifier) -> Tuple[nn.Linear, nn.Linear, nn.Linear]:
    lin = [m for m in clf.head if isinstance(m, nn.Linear)]
    if len(lin) != 3:
        raise ValueError(f'expected the head FC 512 / 256 / 2, found {len(lin)} linear layers')
    return lin[0], lin[1], lin[2]


def cam_forward(clf: Classifier, a: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(logits, heat map) from the last block's output, with forward operations only."""
    fc2, fc3, fc4 = head_layers(clf)
    z = a.mean(dim=(2, 3))
    f1 = clf.fc(clf.standardize(z))
    p2 = fc2(f1)
    p3 = fc3(torch.relu(p2))
    logits = fc4(torch.relu(p3))
    d = (fc4.weight[ABNORMAL] - fc4.weight[NORMAL])[None]
    g = (d * (p3 > 0).float()) @ fc3.weight
    g = (g * (p2 > 0).float()) @ fc2.weight
    g = (g @ clf.fc.weight) / clf.standardize.std
    w = g / (a.shape[2] * a.shape[3])
    heat = torch.relu((a * w[:, :, None, None]).sum(dim=1))
    return logits, heat


class HeatmapNet(nn.Module):
    """What the training kit exports: input 1×3×H×W → probs 1×2 and heatmap 1×h×w."""

    def __init__(self, backbone: nn.Module, classifier: Classifier) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        logits, heat = cam_forward(self.classifier, last_block(self.backbone, x))
        return torch.softmax(logits, dim=1), heat


def grad_cam_autograd(backbone: nn.Module, clf: Classifier, x: torch.Tensor) -> torch.Tensor:
    """Textbook Grad-CAM (Selvaraju et al.): gradients of y through autograd, averaged per channel."""
    with torch.enable_grad():
        a = last_block(backbone, x).detach().requires_grad_(True)
        logits = clf(a.mean(dim=(2, 3)))
        y = logits[:, ABNORMAL] - logits[:, NORMAL]
        (grad,) = torch.autograd.grad(y.sum(), a)
    w = grad.mean(dim=(2, 3))
    return torch.relu((a.detach() * w[:, :, None, None]).sum(dim=1))
