import numpy as np
import torch

from xray_qc_train.export import write_head
from xray_qc_train.model import build_backbone, torchvision_convs
from xray_qc_train.train import Recipe, fit, predict


def test_head_written_for_the_demo_computes_what_the_classifier_does(tmp_path):
    """fc 1000 with the standardisation folded in, then the head: the station's demo graph."""
    _, fc, _ = build_backbone('random', None, 0)
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(12, 4, 512, generator=g) * 3 + 5
    labels = np.array([0, 1] * 6)
    clf = fit(fc, feats, labels, Recipe(epochs=3), seed=0, device=torch.device('cpu'))
    write_head(clf, tmp_path)
    x = feats[:, 0].numpy().astype(np.float64)
    for k in range(4):
        w = np.load(tmp_path / f'fc_{k}.weight.npy').astype(np.float64)
        b = np.load(tmp_path / f'fc_{k}.bias.npy').astype(np.float64)
        x = x @ w.T + b
        if 0 < k < 3:
            x = np.maximum(x, 0)
    p = np.exp(x[:, 1]) / np.exp(x).sum(1)
    assert np.max(np.abs(p - predict(clf, feats))) < 1e-4


def test_folded_backbone_order_is_torchvision_resnet34():
    net, _, _ = build_backbone('random', None, 0)
    pairs = torchvision_convs(net)
    assert len(pairs) == 36  # the stem, 16 blocks × 2, 3 downsamples — what model demo --backbone-out writes
    assert tuple(pairs[0][0].weight.shape) == (64, 3, 7, 7)
    assert tuple(pairs[-1][0].weight.shape) == (512, 512, 3, 3)
