#!/usr/bin/python3
"""The training side's pipeline, for parity tests: a narrow ResNet-34 + FC 1000/512/256/2 in
PyTorch (batch-norm left in, eval mode), exported with torch.onnx.export, and the paper's
preprocessing (section 2.3 conversions, cv2.resize INTER_LINEAR, ImageNet normalisation) from
the training kit (xray_qc_train.preprocess), so the station is checked against the code that
trains its models.

usage:
  torch_reference.py export OUT.onnx --kind softmax|logits [--width-mult 4] [--seed 0]
  torch_reference.py score MODEL.onnx.pt ... (see below)
  torch_reference.py reference --weights W.pt --kind K --source A.npy [--invert] --conversion C
        [--bounds MIN,MAX] --height H --width W [--tensor-out T.npy]
Prints JSON.
"""
import argparse, json, sys
from pathlib import Path
import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'training'))
from xray_qc_train import preprocess as contract  # noqa: E402  the one Python implementation


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return torch.relu(y + (self.down(x) if self.down is not None else x))


class ElectrodeNet(nn.Module):
    """ResNet-34 layout (3, 4, 6, 3 basic blocks) with a configurable base width, + the paper's head."""

    def __init__(self, base=4, logits=False):
        super().__init__()
        self.logits = logits
        self.stem = nn.Sequential(nn.Conv2d(3, base, 7, 2, 3, bias=False), nn.BatchNorm2d(base), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        layers, cin = [], base
        for blocks, mult, stride in ((3, 1, 1), (4, 2, 2), (6, 4, 2), (3, 8, 2)):
            for b in range(blocks):
                layers.append(Block(cin, base * mult, stride if b == 0 else 1))
                cin = base * mult
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, 1000)
        self.head = nn.Sequential(nn.Linear(1000, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 2))

    def forward(self, x):
        x = self.layers(self.stem(x))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        x = self.head(self.fc(x))
        return x if self.logits else torch.softmax(x, dim=1)


def make_model(kind, base, seed):
    torch.manual_seed(seed)
    model = ElectrodeNet(base, logits=(kind == 'logits'))
    for m in model.modules():  # non-trivial batch-norm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    with torch.no_grad():  # amplify the last layer so p_abnormal moves visibly with the input
        model.head[-1].weight.mul_(40.0)
    return model.eval()


def preprocess(a, conversion, bounds, height, width):
    """The training kit's own preprocessing (training/xray_qc_train/preprocess.py), batch of one."""
    return contract.preprocess(a.astype(np.uint16), conversion, bounds, height, width)[None]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('cmd', choices=['export', 'reference'])
    ap.add_argument('--out')
    ap.add_argument('--kind', default='softmax')
    ap.add_argument('--base', type=int, default=4)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--height', type=int, default=256)
    ap.add_argument('--width', type=int, default=128)
    ap.add_argument('--source')
    ap.add_argument('--invert', action='store_true')
    ap.add_argument('--conversions', default='naive,global,local,mixed')
    ap.add_argument('--bounds', default='1700,2800')
    ap.add_argument('--tensor-dir')
    args = ap.parse_args()
    model = make_model(args.kind, args.base, args.seed)
    if args.cmd == 'export':
        x = torch.zeros(1, 3, args.height, args.width)
        name = 'probs' if args.kind == 'softmax' else 'logits'
        torch.onnx.export(model, x, args.out, input_names=['input'], output_names=[name], opset_version=13)
        print(json.dumps({'onnx': args.out, 'output': name}))
        return
    a = np.load(args.source)
    if args.invert:
        a = 65535 - a
    bounds = tuple(float(v) for v in args.bounds.split(','))
    out = {}
    with torch.no_grad():
        for conversion in args.conversions.split(','):
            t = preprocess(a, conversion, bounds, args.height, args.width)
            if args.tensor_dir:
                np.save(f'{args.tensor_dir}/{conversion}.npy', t)
            y = model(torch.from_numpy(t))
            p = torch.softmax(y, dim=1) if args.kind == 'logits' else y
            out[conversion] = float(p[0, 1])
    print(json.dumps(out))


if __name__ == '__main__':
    main()
