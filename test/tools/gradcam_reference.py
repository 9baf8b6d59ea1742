#!/usr/bin/python3
"""PyTorch autograd Grad-CAM, the reference for the heat maps the station's models compute as
forward operations (training/xray_qc_train/gradcam.py, src/model/demo/resnet.ts).

usage:
  gradcam_reference.py export OUT_DIR --height H --width W [--seed S]
      a seeded ResNet-34 + classifier exported by the training kit (OUT_DIR/model.onnx: probs and
      heatmap), a random input (input.npy) and its autograd Grad-CAM (reference.npy)
  gradcam_reference.py demo --backbone DIR --head DIR --input X.npy --out REF.npy
      the demo model's weights (folded backbone, fc_0..3 head) in torchvision; autograd Grad-CAM
Prints JSON (probs).
"""
import argparse, json, sys
from pathlib import Path
import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'training'))
from xray_qc_train.export import export_onnx  # noqa: E402
from xray_qc_train.gradcam import grad_cam_autograd  # noqa: E402
from xray_qc_train.model import Classifier, ElectrodeNet, build_backbone, load_folded  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest='cmd', required=True)
    e = sub.add_parser('export')
    e.add_argument('out')
    e.add_argument('--height', type=int, required=True)
    e.add_argument('--width', type=int, required=True)
    e.add_argument('--seed', type=int, default=0)
    d = sub.add_parser('demo')
    for k in ('backbone', 'head', 'input', 'out'):
        d.add_argument(f'--{k}', required=True)
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    if a.cmd == 'export':
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        backbone, fc, _ = build_backbone('random', None, a.seed)
        clf = Classifier(fc)
        gen = torch.Generator().manual_seed(a.seed + 1)
        x = torch.rand(1, 3, a.height, a.width, generator=gen) * 4 - 2
        with torch.no_grad():
            clf.fit_standardize(backbone(torch.rand(8, 3, a.height, a.width, generator=gen) * 4 - 2))
        net = ElectrodeNet(backbone, clf.eval())
        export_onnx(net, a.height, a.width, out / 'model.onnx')
        np.save(out / 'input.npy', x.numpy().astype(np.float32))
        heat = grad_cam_autograd(backbone, clf, x)
        probs = net(x)
    else:
        net = __import__('torchvision').models.resnet34(weights=None)
        load_folded(net, Path(a.backbone))
        fc = net.fc
        net.fc = nn.Identity()
        backbone = net.eval()
        head = [(np.load(Path(a.head) / f'fc_{k}.weight.npy'), np.load(Path(a.head) / f'fc_{k}.bias.npy')) for k in range(4)]
        clf = Classifier(fc)
        layers = [clf.fc] + [m for m in clf.head if isinstance(m, nn.Linear)]
        for layer, (w, b) in zip(layers, head):
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(b))
        clf.eval()
        x = torch.from_numpy(np.load(a.input))
        heat = grad_cam_autograd(backbone, clf, x)
        probs = torch.softmax(clf(backbone(x)), dim=1)
        out = Path(a.out).parent
    np.save(out / 'reference.npy' if a.cmd == 'export' else a.out, heat.numpy().astype(np.float32))
    print(json.dumps({'probs': probs[0].tolist(), 'shape': list(heat.shape)}))


if __name__ == '__main__':
    main()
