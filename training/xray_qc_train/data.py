"""Labelled captures: `DIR/labels.csv` (columns file,label,bundle; more allowed) or the folder
layout `DIR/<bundle>/<normal|abnormal>/*.tif`. Everything is checked before any work starts."""
from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .preprocess import UnreadableCapture, read_capture

LABELS = ('normal', 'abnormal')
TIFF_SUFFIXES = ('.tif', '.tiff')


class DataError(Exception):
    """Bad data: one line, said before anything is written."""


@dataclass(frozen=True)
class Sample:
    file: str  # relative to the data folder, '/'-separated
    path: Path
    label: int  # 0 normal, 1 abnormal
    bundle: str


@dataclass(frozen=True)
class Dataset:
    root: Path
    samples: Tuple[Sample, ...]
    source: str  # 'labels.csv' or 'folders'
    labels_sha256: Optional[str]

    @property
    def bundles(self) -> List[str]:
        return sorted({s.bundle for s in self.samples})

    def counts(self) -> Dict[str, Dict[str, int]]:
        out: Dict[str, Dict[str, int]] = {}
        for s in self.samples:
            c = out.setdefault(s.bundle, {'normal': 0, 'abnormal': 0})
            c[LABELS[s.label]] += 1
        return {b: out[b] for b in sorted(out)}

    def files_sha256(self) -> str:
        """sha256 of the sorted file list (one relative path a line)."""
        text = ''.join(f'{f}\n' for f in sorted(s.file for s in self.samples))
        return hashlib.sha256(text.encode('utf-8')).hexdigest()

    def single_class_bundles(self) -> List[str]:
        return [b for b, c in self.counts().items() if min(c.values()) == 0]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def load_dataset(root: Path) -> Dataset:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f'{root}: not a folder')
    csv_path = root / 'labels.csv'
    if csv_path.exists():
        samples = _from_csv(root, csv_path)
        ds = Dataset(root, tuple(samples), 'labels.csv', sha256_file(csv_path))
    else:
        ds = Dataset(root, tuple(_from_folders(root)), 'folders', None)
    if not ds.samples:
        raise DataError(f'{root}: no captures')
    if len({s.label for s in ds.samples}) < 2:
        raise DataError(f'{root}: all captures are {LABELS[ds.samples[0].label]}; training needs both classes')
    if len(ds.bundles) < 2:
        raise DataError(f'{root}: one bundle only ({ds.bundles[0]}); leave-one-bundle-out needs at least two')
    return ds


def _from_csv(root: Path, csv_path: Path) -> List[Sample]:
    with open(csv_path, newline='', encoding='utf-8-sig') as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(f'{csv_path.name}: empty') from None
        missing = [c for c in ('file', 'label', 'bundle') if c not in header]
        if missing:
            raise DataError(f'{csv_path.name}:1: missing column{"s" if len(missing) > 1 else ""} {", ".join(missing)} (need file,label,bundle)')
        col = {c: header.index(c) for c in ('file', 'label', 'bundle')}
        samples: List[Sample] = []
        seen: Dict[str, int] = {}
        for n, row in enumerate(reader, start=2):
            if not row or all(not v.strip() for v in row):
                continue
            if len(row) < len(header):
                raise DataError(f'{csv_path.name}:{n}: {len(row)} fields, the header has {len(header)}')
            file, label, bundle = (row[col[c]].strip() for c in ('file', 'label', 'bundle'))
            if label not in LABELS:
                raise DataError(f'{csv_path.name}:{n}: unknown label "{label}" (normal or abnormal)')
            if not bundle:
                raise DataError(f'{csv_path.name}:{n}: empty bundle')
            if not file or file.startswith('/') or '..' in Path(file).parts:
                raise DataError(f'{csv_path.name}:{n}: file "{file}" must be a path inside {root}')
            if file in seen:
                raise DataError(f'{csv_path.name}:{n}: "{file}" is listed again (first on line {seen[file]})')
            seen[file] = n
            path = root / file
            if not path.is_file():
                raise DataError(f'{csv_path.name}:{n}: missing file {file}')
            samples.append(Sample(file, path, LABELS.index(label), bundle))
    return samples


def _from_folders(root: Path) -> List[Sample]:
    samples: List[Sample] = []
    for bundle in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith('.')):
        for sub in sorted(p for p in bundle.iterdir() if p.is_dir() and not p.name.startswith('.')):
            if sub.name not in LABELS:
                raise DataError(f'{sub.relative_to(root)}: unknown label folder "{sub.name}" (normal or abnormal)')
            for f in sorted(sub.rglob('*')):
                if f.is_file() and f.suffix.lower() in TIFF_SUFFIXES and not f.name.startswith('.'):
                    samples.append(Sample(f.relative_to(root).as_posix(), f, LABELS.index(sub.name), bundle.name))
    if not samples:
        raise DataError(f'{root}: no labels.csv and no <bundle>/<normal|abnormal>/*.tif folders')
    return samples


def check_readable(ds: Dataset, skip_unreadable: bool,
                   progress: Callable[[int, int], None] = lambda i, n: None) -> Tuple[Dataset, List[Tuple[str, str]]]:
    """Decodes every capture once. Unreadable ones are listed; the run refuses unless skipping."""
    bad: List[Tuple[str, str]] = []
    for i, s in enumerate(ds.samples):
        try:
            read_capture(s.path)
        except UnreadableCapture as err:
            bad.append((s.file, str(err).split(': ', 1)[-1]))
        progress(i + 1, len(ds.samples))
    if bad and not skip_unreadable:
        listed = '; '.join(f'{f} ({why})' for f, why in bad[:5]) + (f'; and {len(bad) - 5} more' if len(bad) > 5 else '')
        raise DataError(f'{len(bad)} unreadable capture{"s" if len(bad) > 1 else ""}: {listed} (--skip-unreadable to leave them out)')
    keep = tuple(s for s in ds.samples if s.file not in {f for f, _ in bad})
    kept = Dataset(ds.root, keep, ds.source, ds.labels_sha256)
    if len({s.label for s in kept.samples}) < 2 or len(kept.bundles) < 2:
        raise DataError('too few readable captures left: training needs both classes and two bundles')
    return kept, bad


def indices_by_bundle(samples: Sequence[Sample]) -> Dict[str, List[int]]:
    out: Dict[str, List[int]] = {}
    for i, s in enumerate(samples):
        out.setdefault(s.bundle, []).append(i)
    return {b: out[b] for b in sorted(out)}
