import copy
import json

import numpy as np
import torch

from xray_qc_train.data import load_dataset
from xray_qc_train.finetune import fit_end_to_end, flip_batch, load_tensors
from xray_qc_train.gradcam import HeatmapNet, grad_cam_autograd
from xray_qc_train.model import build_backbone
from xray_qc_train.train import Recipe

from test_cli import FAST, run

CPU = torch.device('cpu')


def test_flip_batch_flips_only_the_chosen_images():
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    y = flip_batch(x, torch.tensor([True, False]), torch.tensor([True, True]))
    assert torch.equal(y[0], torch.flip(x[0], [1, 2]))
    assert torch.equal(y[1], torch.flip(x[1], [1]))


def test_zero_init_residual_makes_each_block_start_as_its_shortcut():
    from xray_qc_train.finetune import zero_init_residual
    net, _, _ = build_backbone('random', None, 0)
    zero_init_residual(net)
    block = net.layer1[0].eval()
    x = torch.rand(1, 64, 8, 8)
    with torch.no_grad():
        assert torch.allclose(block(x), torch.relu(x))


def test_fine_tune_trains_the_backbone_and_its_heat_map_is_still_grad_cam(plain):
    ds = load_dataset(plain)
    labels = np.array([s.label for s in ds.samples])
    backbone, fc, _ = build_backbone('random', None, 0)
    start = copy.deepcopy(backbone.state_dict())
    recipe = Recipe(epochs=6, lr=1e-3, batch_size=8, height=64, width=32, fine_tune=True)
    x = load_tensors(ds.samples, 'local', None, recipe)
    losses = []
    net, clf = fit_end_to_end(backbone, fc, x, labels, recipe, 0, CPU, random_start=True,
                              progress=lambda e, n, loss: losses.append(loss))
    # the backbone passed in is untouched; the trained one differs in its convolutions and batch-norm statistics
    assert all(torch.equal(v, backbone.state_dict()[k]) for k, v in start.items())
    changed = {k for k, v in net.state_dict().items() if not torch.equal(v, start[k])}
    assert {'conv1.weight', 'layer1.0.conv1.weight', 'layer4.2.conv2.weight', 'bn1.running_mean', 'layer2.1.bn2.weight'} <= changed
    assert not net.training and not clf.training and not any(p.requires_grad for p in net.parameters())
    assert len(losses) == 6 and losses[-1] < losses[0], losses
    with torch.no_grad():
        p = torch.softmax(clf(net(x)), dim=1)[:, 1].numpy()
    acc = float(np.mean((p >= 0.5) == (labels == 1)))
    print('fine-tuned on plain data: losses', [round(v, 3) for v in losses], 'training accuracy', acc)
    assert acc >= 0.8, acc
    # the exported heat map of a trained backbone (batch-norm in eval mode) is autograd's Grad-CAM
    ref = grad_cam_autograd(net, clf, x[:8])
    with torch.no_grad():
        _, heat = HeatmapNet(net, clf)(x[:8])
    compared = 0
    for h, r in zip(heat, ref):
        if r.max() > 0:
            assert float((h / h.max() - r / r.max()).abs().max()) <= 1e-4
            compared += 1
    assert compared > 0


def test_fine_tune_through_the_cli_writes_a_bundle_that_says_so(plain, tmp_path):
    out = tmp_path / 'ft'
    r = run('train', '--data', plain, '--out', out, '--name', 'ft', '--version', '1', '--fine-tune', '--batch-size', '8',
            *[a if a != '30' else '3' for a in FAST])
    assert r.returncode == 0, r.stderr
    assert 'backbone too' in r.stderr
    card = json.loads((out / 'model-card.json').read_text())
    assert card['recipe']['fine_tune'] is True
    assert card['backbone']['untrained_backbone'] is False and 'end to end' in card['backbone']['trained']
    assert 'Backbone trained end to end' in (out / 'model-card.md').read_text()
    manifest = json.loads((out / 'manifest.json').read_text())
    assert manifest['outputs']['heatmap'] == 'heatmap'


def test_fine_tune_refuses_what_needs_a_network_per_fold(plain, tmp_path):
    for extra, word in ((['--evaluate'], '--evaluate'), (['--operating-point', 'balanced'], '--operating-point'),
                        (['--head-out', str(tmp_path / 'h')], '--head-out')):
        out = tmp_path / 'x'
        r = run('train', '--data', plain, '--out', out, '--name', 'ft', '--version', '1', '--fine-tune', *FAST, *extra)
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith('xray-qc train: --fine-tune') or r.stderr.startswith("xray-qc train: --head-out"), r.stderr
        assert word in r.stderr.splitlines()[0]
        assert not out.exists()
