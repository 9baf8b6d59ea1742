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


def test_forward_grad_cam_equals_autograd_grad_cam_after_training():
    """The exported heat map (forward operations) is textbook Grad-CAM of the abnormal-minus-normal
    logit, for a classifier that has been fitted (standardisation and ReLU masks both matter)."""
    from xray_qc_train.gradcam import HeatmapNet, grad_cam_autograd
    backbone, fc, _ = build_backbone('random', None, 1)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, 3, 128, 64, generator=g) * 4 - 2
    with torch.no_grad():
        feats = backbone(x)
    clf = fit(fc, feats[:, None].repeat(1, 4, 1), np.array([0, 1] * 3), Recipe(epochs=2), seed=0, device=torch.device('cpu')).eval()
    ref = grad_cam_autograd(backbone, clf, x)
    if float(ref.max()) == 0:  # every map negative before the ReLU: swap the classes, which negates y
        with torch.no_grad():
            clf.head[4].weight.copy_(clf.head[4].weight.flip(0))
            clf.head[4].bias.copy_(clf.head[4].bias.flip(0))
        ref = grad_cam_autograd(backbone, clf, x)
    with torch.no_grad():
        probs, heat = HeatmapNet(backbone, clf)(x)
    assert heat.shape == (6, 4, 2)
    assert torch.allclose(probs, torch.softmax(clf(feats), dim=1), atol=1e-6)
    for h, r in zip(heat, ref):
        if r.max() > 0:
            assert float((h / h.max() - r / r.max()).abs().max()) <= 1e-4
    assert float(ref.max()) > 0
