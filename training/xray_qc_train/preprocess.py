"""The station's preprocessing contract (docs/scoring.md) in NumPy/OpenCV: decode, the paper's four
16 → 8-bit conversions, OpenCV INTER_LINEAR resize, normalisation. The training kit and the
parity tests use this one implementation; the station's TypeScript is checked against it."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
import tifffile

CONVERSIONS = ('naive', 'global', 'local', 'mixed')
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
Bounds = Tuple[float, float]


class UnreadableCapture(Exception):
    """A file that is not a 16-bit single-sample TIFF this contract accepts."""


def read_capture(path: Path) -> np.ndarray:
    """The first page as uint16 H×W; MinIsWhite inverted (65535 − x), as the station does.

    tifffile decodes what it can by itself; Debian has no imagecodecs, so LZW, PackBits and
    Zstandard pages are decoded by OpenCV (libtiff), with the photometric tag still read by
    tifffile."""
    try:
        with tifffile.TiffFile(str(path)) as tif:
            page = tif.pages[0]
            if page.dtype != np.uint16 or page.samplesperpixel != 1:
                raise UnreadableCapture(f'{path}: not a 16-bit single-sample TIFF ({page.dtype}, {page.samplesperpixel} samples)')
            white = int(page.photometric) == 0
            try:
                a = page.asarray()
            except (ValueError, NotImplementedError, KeyError) as err:
                if 'imagecodecs' not in str(err):
                    raise
                a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
                if a is None or a.dtype != np.uint16 or a.ndim != 2:
                    raise UnreadableCapture(f'{path}: OpenCV could not decode it') from err
    except UnreadableCapture:
        raise
    except Exception as err:  # tifffile raises many kinds for a corrupt file
        raise UnreadableCapture(f'{path}: {err}') from err
    if a.ndim != 2:
        raise UnreadableCapture(f'{path}: expected one 2-D page, got shape {a.shape}')
    a = a.astype(np.uint16, copy=False)
    return (65535 - a).astype(np.uint16) if white else a


def _by_bounds(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    with np.errstate(invalid='ignore', divide='ignore'):
        v = np.floor((np.clip(a, lo, hi) - lo) / (hi - lo) * 255 + 0.5)
    return np.nan_to_num(v, nan=0.0).astype(np.uint8)  # flat image: 0/0 → 0, as the station


def local_bounds(a: np.ndarray) -> Bounds:
    lo, hi = np.percentile(a, [0.01, 99.99])
    return float(lo), float(hi)


def convert(a: np.ndarray, conversion: str, bounds: Optional[Bounds]) -> Sequence[np.ndarray]:
    """Three uint8 planes for a uint16 image (paper §2.3, methods 1–4)."""
    if conversion not in CONVERSIONS:
        raise ValueError(f'unknown conversion {conversion!r}')
    f = a.astype(np.float64)
    naive = (a >> 8).astype(np.uint8)
    if conversion == 'naive':
        return [naive] * 3
    if conversion in ('global', 'mixed') and bounds is None:
        raise ValueError(f'the {conversion} conversion needs bounds')
    if conversion == 'global':
        return [_by_bounds(f, *bounds)] * 3
    local = _by_bounds(f, *local_bounds(a))
    if conversion == 'local':
        return [local] * 3
    return [naive, _by_bounds(f, *bounds), local]


def to_tensor(planes: Sequence[np.ndarray], height: int, width: int,
              mean: Sequence[float] = MEAN, std: Sequence[float] = STD) -> np.ndarray:
    """float32 3×H×W: each plane resized (cv2 INTER_LINEAR), then (v/255 − mean)/std."""
    t = np.empty((3, height, width), dtype=np.float32)
    for c, p in enumerate(planes):
        r = cv2.resize(p, (width, height), interpolation=cv2.INTER_LINEAR)
        t[c] = (r.astype(np.float32) / np.float32(255.0) - np.float32(mean[c])) / np.float32(std[c])
    return t


def preprocess(a: np.ndarray, conversion: str, bounds: Optional[Bounds], height: int, width: int) -> np.ndarray:
    return to_tensor(convert(a, conversion, bounds), height, width)
