"""From a trained classifier to a station bundle: ONNX (opset 13, float32, 1×3×H×W → probs 1×2),
train-predictions.csv, the model card, packed by `xray-qc model pack` (the same checks as any
bundle)."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from . import station
from .data import Dataset
from .gradcam import HeatmapNet
from .model import Classifier, ElectrodeNet
from .preprocess import MEAN, STD, Bounds, preprocess, read_capture


HEATMAP = 'heatmap'


def export_onnx(net: ElectrodeNet, height: int, width: int, path: Path) -> None:
    """probs (1×2) and the Grad-CAM heat map (1×h×w, gradcam.py) as a second output, `heatmap`."""
    cam = HeatmapNet(net.backbone, net.classifier).eval()
    x = torch.zeros(1, 3, height, width)
    torch.onnx.export(cam, x, str(path), input_names=['input'], output_names=['probs', HEATMAP], opset_version=13)


@torch.no_grad()
def score_training_files(net: ElectrodeNet, ds: Dataset, conversion: str, bounds: Optional[Bounds],
                         height: int, width: int) -> List[Tuple[str, float]]:
    """Each training file through the exported network as PyTorch runs it: no flips, batch of one."""
    net.eval()
    out = []
    for s in ds.samples:
        t = torch.from_numpy(preprocess(read_capture(s.path), conversion, bounds, height, width))[None]
        out.append((s.file, float(net(t)[0, 1])))
    return out


def write_predictions(path: Path, rows: Sequence[Tuple[str, float]]) -> None:
    with open(path, 'w', newline='') as f:
        w = csv.writer(f, lineterminator='\n')
        w.writerow(['file', 'p_abnormal'])
        for file, p in rows:
            w.writerow([file, repr(p)])


def card_markdown(card: dict) -> str:
    d, r = card['data'], card['recipe']
    lines = [f'# Model card: {card["name"]} v{card["version"]}', '']
    if card.get('trained_on_synthetic'):
        lines += ['**Trained on synthetic captures** (`xray-qc synth`): a demonstration, not a model for a line.', '']
    if card['backbone'].get('untrained_backbone'):
        lines += ['**Backbone: random (seeded), not ImageNet** — `untrained_backbone: true`.', '']
    lines += ['## Data', '', f'{d["captures"]} captures in {len(d["bundles"])} bundles, from {d["source"]} '
              f'(labels.csv sha256 `{d["labels_sha256"]}`; sorted file list sha256 `{d["files_sha256"]}`).', '',
              '| bundle | normal | abnormal |', '|---|---:|---:|']
    lines += [f'| {b} | {c["normal"]} | {c["abnormal"]} |' for b, c in d['bundles'].items()]
    if d['skipped_unreadable']:
        lines += ['', f'Left out as unreadable: {", ".join(f for f, _ in d["skipped_unreadable"])}.']
    pp = card['preprocess']
    lines += ['', '## Preprocessing and recipe', '',
              f'Conversion `{pp["conversion"]}`' + (f', global bounds {pp["bounds"]["min"]:g}–{pp["bounds"]["max"]:g} ({pp["bounds_rule"]})' if pp['bounds'] else '') +
              f'; input {r["height"]}×{r["width"]}. {r["epochs"]} epochs, {r["optimizer"]} lr {r["lr"]:g} × {r["lr_decay"]:g} every '
              f'{r["lr_step"]} epochs, batch {r["batch_size"]}, class weights {r["class_weights"]}, seed {card["seed"]}. ' +
              ('Backbone trained end to end with the head (`--fine-tune`), batch-norm in batch mode, exported in eval mode with '
               'its statistics recomputed over the training images; pooled features not standardised (docs/decisions.md D45).'
               if r.get('fine_tune') else
               'Backbone frozen in eval mode; pooled features standardised with training-set statistics (docs/decisions.md).'),
              '', f'Versions: xray-qc {card["versions"]["xray_qc"]}, torch {card["versions"]["torch"]}, torchvision {card["versions"]["torchvision"]}.']
    op = card.get('operating_point')
    if op:
        lines += ['', '## Operating point', '', f'`{op["spec"]}`: threshold {op["threshold"]:.6g}' +
                  (f', review band [{op["review_band"][0]:.6g}, {op["review_band"][1]:.6g})' if op['review_band'] else ', no review band') + '.']
        if 'expected' in op:
            e = op['expected']
            lines += [f'Expected from out-of-fold scores ({op["oof_method"]}): TPR {100 * e["tpr"]:.2f} %, TNR {100 * e["tnr"]:.2f} %, '
                      f'BA {100 * e["ba"]:.2f} %, in the review band {op["in_band"]} of {d["captures"]}.']
    if card.get('lobo'):
        lines += ['', '## Leave-one-bundle-out balanced accuracy (%)', '', '| bundle | ' + ' | '.join(card['lobo']['methods']) + ' |',
                  '|---|' + '---:|' * len(card['lobo']['methods'])]
        for b, row in card['lobo']['table'].items():
            lines.append(f'| {b} | ' + ' | '.join(f'{row[m]:.2f}' for m in card['lobo']['methods']) + ' |')
    return '\n'.join(lines) + '\n'


def pack(staging: Path, out_name: str, name: str, version: int, conversion: str, bounds: Optional[Bounds],
         threshold: float, band: Optional[Tuple[float, float]], height: int, width: int, extra: Sequence[str],
         metrics: dict, description: str, synthetic: bool = False) -> Path:
    """`xray-qc model pack` into staging/<out_name>, listing the extra files of staging/."""
    bundle = staging / out_name
    (staging / 'metrics.json').write_text(json.dumps(metrics))
    args = ['model', 'pack', '--onnx', str(staging / 'model.onnx'), '--out', str(bundle), '--name', name,
            '--version', str(version), '--conversion', conversion, '--threshold', repr(threshold),
            '--height', str(height), '--width', str(width), '--mean', ','.join(map(str, MEAN)), '--std', ','.join(map(str, STD)),
            '--metrics', str(staging / 'metrics.json'), '--description', description, '--heatmap-output', HEATMAP]
    if bounds:
        args += ['--bounds', f'{bounds[0]:g},{bounds[1]:g}']
    if band:
        args += ['--review-band', f'{band[0]!r},{band[1]!r}']
    for f in extra:
        args += ['--file', str(staging / f)]
    if synthetic:
        args.append('--synthetic')
    station.run_cli(args)
    return bundle


@torch.no_grad()
def write_head(clf: Classifier, folder: Path) -> None:
    """fc 1000 with the standardisation folded in (W/std, b − (W/std)·mean), FC 512, FC 256, FC 2 as
    fc_K.weight.npy / fc_K.bias.npy: what the station's demo model builds its head from."""
    folder.mkdir(parents=True, exist_ok=True)
    w = clf.fc.weight / clf.standardize.std
    b = clf.fc.bias - w @ clf.standardize.mean
    layers = [(w, b)] + [(m.weight, m.bias) for m in clf.head if isinstance(m, nn.Linear)]
    for k, (weight, bias) in enumerate(layers):
        np.save(folder / f'fc_{k}.weight.npy', weight.numpy().astype(np.float32))
        np.save(folder / f'fc_{k}.bias.npy', bias.numpy().astype(np.float32))
