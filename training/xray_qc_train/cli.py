"""`python3 -m xray_qc_train train|evaluate …` (also `xray-qc train|evaluate …`)."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
import torchvision

from . import __version__, station
from .data import DataError, Dataset, check_readable, load_dataset
from .evaluate import FeatureCache, lobo, table, write_oof_predictions, write_report
from .export import write_head, card_markdown, export_onnx, pack, score_training_files, write_predictions
from .finetune import fit_end_to_end, load_tensors
from .metrics import histogram, operating_point, rates, review_band
from .model import ElectrodeNet, build_backbone
from .preprocess import CONVERSIONS
from .train import Recipe, fit


class UsageError(Exception):
    pass


def log(msg: str) -> None:
    print(f'[{time.strftime("%H:%M:%S")}] {msg}', file=sys.stderr, flush=True)


def size(text: str):
    try:
        h, w = (int(v) for v in text.lower().split('x'))
        if h < 32 or w < 32:
            raise ValueError
        return h, w
    except ValueError:
        raise argparse.ArgumentTypeError(f'"{text}": HxW, each at least 32 (e.g. 2000x1000)') from None


def common(p: argparse.ArgumentParser) -> None:
    p.add_argument('--data', required=True, type=Path, help='labels.csv (file,label,bundle) or <bundle>/<normal|abnormal>/*.tif')
    p.add_argument('--out', required=True, type=Path, help='must not exist yet; written whole or not at all')
    p.add_argument('--input-size', type=size, default=(2000, 1000), metavar='HxW', help='network input (default 2000x1000)')
    p.add_argument('--epochs', type=int, default=50)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--lr-step', type=int, default=10, help='epochs between learning-rate decays')
    p.add_argument('--lr-decay', type=float, default=0.5, help='factor at each decay')
    p.add_argument('--optimizer', choices=['adam', 'sgd'], default='adam')
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--class-weights', choices=['none', 'balanced'], default='none')
    p.add_argument('--backbone', choices=['imagenet', 'random', 'folded'], default='imagenet',
                   help="folded: the station demo model's backbone, from xray-qc model demo --backbone-out DIR")
    p.add_argument('--backbone-weights', type=Path, help='ImageNet weights (.pth) on an offline host; for folded, the folder')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto')
    p.add_argument('--skip-unreadable', action='store_true', help='leave unreadable TIFFs out instead of refusing')
    p.add_argument('--threads', type=int, default=0, help="PyTorch's CPU threads (default: every core this process may use)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog='xray-qc', description='xray-qc training host')
    sub = ap.add_subparsers(dest='cmd', required=True)
    ev = sub.add_parser('evaluate', help="leave-one-bundle-out: the paper's Table 1 on your data")
    common(ev)
    ev.add_argument('--conversions', default='naive,global,local,mixed')
    ev.add_argument('--bounds-from', choices=['train', 'all'], default='train',
                    help="global bounds from each fold's training bundles (default) or all data (the paper)")
    tr = sub.add_parser('train', help='train on all bundles and write a station bundle')
    common(tr)
    tr.add_argument('--name', required=True)
    tr.add_argument('--version', required=True, type=int)
    tr.add_argument('--conversion', choices=CONVERSIONS, default='global')
    tr.add_argument('--bounds', default='auto', help='auto (0.01/99.99th percentiles, rounded to hundreds) or MIN,MAX')
    tr.add_argument('--operating-point', default='argmax', help='argmax | balanced | miss-rate:R')
    tr.add_argument('--review-band', help='auto:F — at most a share F of out-of-fold captures inside')
    tr.add_argument('--evaluate', nargs='?', const='naive,global,local,mixed', metavar='METHODS',
                    help='run the LOBO folds (all four methods, or those listed) and store the table')
    tr.add_argument('--synthetic', action='store_true', help='mark the bundle and its card: trained on synthetic captures')
    tr.add_argument('--fine-tune', action='store_true',
                    help='train the backbone too, end to end (no ImageNet weights, or heat maps that must localise); '
                         'not with --evaluate or an out-of-fold operating point')
    tr.add_argument('--head-out', type=Path, help="also write fc 1000 (standardisation folded in) and the head as .npy (the demo model's)")
    return ap


def check_args(a: argparse.Namespace) -> None:
    if a.out.exists() and (not a.out.is_dir() or any(a.out.iterdir())):
        raise UsageError(f'--out {a.out}: exists and is not empty (nothing was written)')
    if a.epochs < 1 or a.batch_size < 1 or a.lr_step < 1:
        raise UsageError('--epochs, --batch-size and --lr-step must be at least 1')
    if a.backbone == 'imagenet' and a.backbone_weights and not a.backbone_weights.is_file():
        raise UsageError(f'--backbone-weights {a.backbone_weights}: no such file')
    listed = a.conversions if a.cmd == 'evaluate' else a.evaluate
    if listed:
        bad = [m for m in listed.split(',') if m not in CONVERSIONS]
        if bad:
            raise UsageError(f'--{"conversions" if a.cmd == "evaluate" else "evaluate"}: unknown {",".join(bad)} (naive, global, local, mixed)')
    if a.cmd == 'train':
        try:
            operating_point(a.operating_point, np.array([1, 0]), np.array([0.9, 0.1]))
            if a.review_band:
                review_band(a.review_band, 0.5, np.array([0.4, 0.6]))
        except ValueError as err:
            raise UsageError(str(err)) from None
        if a.bounds != 'auto':
            try:
                lo, hi = (float(v) for v in a.bounds.split(','))
                assert 0 <= lo < hi <= 65535
            except (ValueError, AssertionError):
                raise UsageError(f'--bounds "{a.bounds}": auto or MIN,MAX with 0 ≤ MIN < MAX ≤ 65535') from None
        if a.fine_tune and (a.evaluate or a.operating_point != 'argmax' or a.review_band):
            raise UsageError('--fine-tune trains one network on all bundles: --evaluate, --operating-point and --review-band '
                             'need a fine-tuned network per fold, which this kit does not run (docs/training.md)')
        if a.fine_tune and a.head_out:
            raise UsageError("--head-out writes the demo model's head for its seeded backbone; a fine-tuned backbone is not that one")


def device_of(choice: str) -> torch.device:
    if choice == 'cuda' and not torch.cuda.is_available():
        raise UsageError('--device cuda: no CUDA device visible to PyTorch')
    return torch.device('cuda' if choice == 'cuda' or (choice == 'auto' and torch.cuda.is_available()) else 'cpu')


def prepare(a: argparse.Namespace):
    check_args(a)
    ds = load_dataset(a.data)
    log(f'{len(ds.samples)} captures in {len(ds.bundles)} bundles ({ds.source}); checking that every one decodes')
    ds, skipped = check_readable(ds, a.skip_unreadable)
    for f, why in skipped:
        log(f'left out (unreadable): {f}: {why}')
    single = ds.single_class_bundles()
    if single:
        log(f'bundles with one class only (allowed; their BA is that class\'s recall): {", ".join(single)}')
    try:
        backbone, fc, info = build_backbone(a.backbone, a.backbone_weights, a.seed)
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    h, w = a.input_size
    recipe = Recipe(a.epochs, a.lr, a.lr_step, a.lr_decay, a.optimizer, a.batch_size, a.class_weights, h, w,
                    getattr(a, 'fine_tune', False))
    dev = device_of(a.device)
    # Debian's torch starts with one OpenMP thread here; on 2 cores two halve a ResNet-34 pass.
    torch.set_num_threads(a.threads if a.threads > 0 else len(os.sched_getaffinity(0)))
    log(f'device {dev} ({torch.get_num_threads()} CPU threads); backbone {a.backbone}; input {h}×{w}; {a.epochs} epochs')
    return ds, skipped, backbone, fc, info, recipe, dev


def epoch_log(prefix: str, every: int = 10):
    return lambda e, n, loss: log(f'{prefix}epoch {e}/{n} loss {loss:.4f}') if e % every == 0 or e == n else None


def cmd_evaluate(a: argparse.Namespace, staging: Path) -> dict:
    ds, skipped, backbone, fc, info, recipe, dev = prepare(a)
    methods = a.conversions.split(',')
    t0 = time.time()
    results, oof = lobo(ds, methods, FeatureCache(backbone, ds, recipe, dev, log), fc, recipe, a.seed, a.bounds_from, log)
    meta = {'recipe': recipe.as_dict(), 'backbone': info, 'seed': a.seed, 'bounds_from': a.bounds_from,
            'seconds': round(time.time() - t0, 1), 'skipped_unreadable': skipped}
    rows = write_report(staging, ds, methods, results, oof, meta)
    return {'out': str(a.out), 'overall': {m: round(v, 2) for m, v in rows['Overall'].items()},
            'seconds': meta['seconds']}


def cmd_train(a: argparse.Namespace, staging: Path) -> dict:
    ds, skipped, backbone, fc, info, recipe, dev = prepare(a)
    labels = np.array([s.label for s in ds.samples])
    t0 = time.time()
    if a.conversion in ('global', 'mixed'):
        bounds = station.bounds([s.path for s in ds.samples])[0] if a.bounds == 'auto' else tuple(float(v) for v in a.bounds.split(','))
        log(f'global bounds {bounds[0]:g},{bounds[1]:g} ({"xray-qc bounds" if a.bounds == "auto" else "given"})')
    else:
        bounds = None
    cache = FeatureCache(backbone, ds, recipe, dev, log)
    lobo_card, oof_p = None, None
    needs_oof = a.operating_point != 'argmax' or bool(a.review_band)
    if a.evaluate or needs_oof:
        methods = a.evaluate.split(',') if a.evaluate else [a.conversion]
        if a.conversion not in methods:
            methods.append(a.conversion)
        # folds use the bounds the model will use when they are given, else each fold's own
        fold_rule = bounds if a.bounds != 'auto' and bounds else 'train'
        results, oof = lobo(ds, methods, cache, fc, recipe, a.seed, fold_rule, log)
        oof_p = oof[a.conversion]
        lobo_card = {'methods': methods, 'bounds_from': 'train' if fold_rule == 'train' else 'given',
                     'table': {b: {m: round(v, 2) for m, v in row.items()} for b, row in table(results, methods, ds.bundles).items()}}
        write_oof_predictions(staging / 'oof-predictions.csv', ds, methods, oof)
    log(f'training on all {len(ds.samples)} captures ({a.conversion}{", backbone too" if a.fine_tune else ""})')
    if a.fine_tune:
        x = load_tensors(ds.samples, a.conversion, bounds, recipe)
        backbone, clf = fit_end_to_end(backbone, fc, x, labels, recipe, a.seed, dev, a.backbone == 'random',
                                       epoch_log('', every=1))
        del x
        info = {**info, 'untrained_backbone': False, 'trained': 'end to end, from the ' + info['kind'] + ' start (--fine-tune)'}
    else:
        clf = fit(fc, cache.get(a.conversion, bounds), labels, recipe, a.seed, dev, epoch_log(''))
    net = ElectrodeNet(backbone.cpu(), clf).eval()
    h, w = a.input_size
    threshold = operating_point(a.operating_point, labels, oof_p) if oof_p is not None else 0.5
    band = review_band(a.review_band, threshold, oof_p) if a.review_band and oof_p is not None else None
    op: dict = {'spec': a.operating_point, 'threshold': threshold, 'review_band': list(band) if band else None,
                'review_band_spec': a.review_band}
    if oof_p is not None:
        op.update(oof_method=a.conversion, expected=rates(labels, oof_p, threshold),
                  in_band=int(np.sum((oof_p >= band[0]) & (oof_p < band[1]))) if band else 0,
                  histograms={'normal': histogram(oof_p[labels == 0]), 'abnormal': histogram(oof_p[labels == 1])})
    log('exporting ONNX and scoring every training file with the exported network')
    export_onnx(net, h, w, staging / 'model.onnx')
    write_predictions(staging / 'train-predictions.csv', score_training_files(net, ds, a.conversion, bounds, h, w))
    card = {
        'name': a.name, 'version': a.version, 'created_at': datetime.now(timezone.utc).isoformat(timespec='seconds'),
        'trained_on_synthetic': a.synthetic, 'seed': a.seed,
        'data': {'source': ds.source, 'captures': len(ds.samples), 'bundles': ds.counts(), 'labels_sha256': ds.labels_sha256,
                 'files_sha256': ds.files_sha256(), 'skipped_unreadable': skipped},
        'preprocess': {'conversion': a.conversion, 'bounds': {'min': bounds[0], 'max': bounds[1]} if bounds else None,
                       'bounds_rule': 'xray-qc bounds: 0.01/99.99th percentiles over the training pixels, rounded to hundreds' if a.bounds == 'auto' else 'given'},
        'recipe': recipe.as_dict(), 'backbone': info,
        'versions': {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'xray_qc': station.version(),
                     'xray_qc_train': __version__},
        'lobo': lobo_card, 'operating_point': op, 'seconds': round(time.time() - t0, 1),
    }
    (staging / 'model-card.json').write_text(json.dumps(card, indent=2) + '\n')
    (staging / 'model-card.md').write_text(card_markdown(card))
    extra = ['model-card.json', 'model-card.md', 'train-predictions.csv'] + (['oof-predictions.csv'] if lobo_card else [])
    metrics = {'lobo_ba_overall': lobo_card['table']['Overall'] if lobo_card else None,
               'operating_point': a.operating_point, 'trained_on_synthetic': a.synthetic,
               'untrained_backbone': bool(info.get('untrained_backbone'))}
    desc = f'ResNet-34 + FC 512/256/2, {a.conversion} conversion, trained by xray_qc_train on {len(ds.samples)} captures' + \
           (' (synthetic)' if a.synthetic else '')
    if a.head_out:
        write_head(clf, a.head_out)
    bundle = pack(staging, 'bundle', a.name, a.version, a.conversion, bounds, threshold, band, h, w, extra, metrics, desc, a.synthetic)
    return {'bundle': str(a.out), 'threshold': threshold, 'review_band': op['review_band'],
            'lobo_overall': lobo_card['table']['Overall'] if lobo_card else None, 'seconds': card['seconds'], '_dir': str(bundle)}


def main(argv: Optional[List[str]] = None) -> int:
    a = parser().parse_args(argv)
    prog = f'xray-qc {a.cmd}'
    a.out = a.out.resolve()
    try:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f'.{a.out.name}.', dir=a.out.parent))
    except OSError as err:
        print(f'{prog}: --out {a.out}: {err.strerror}', file=sys.stderr)
        return 2
    try:
        result = cmd_train(a, staging) if a.cmd == 'train' else cmd_evaluate(a, staging)
        src = Path(result.pop('_dir', staging))
        if a.out.exists():
            a.out.rmdir()  # empty, checked above
        os.replace(src, a.out)
        print(json.dumps(result))
        return 0
    except (DataError, UsageError, station.StationError) as err:
        print(f'{prog}: {err}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f'{prog}: interrupted; nothing written at {a.out}', file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(staging, ignore_errors=True)
