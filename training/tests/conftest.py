import csv
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'training'))
os.environ.setdefault('XRAY_QC_CLI', f'node {ROOT / "bin" / "xray-qc.js"}')


def write_plain(root: Path, bundles: int = 5, per_bundle: int = 8, seed: int = 7, shape=(160, 80)) -> Path:
    """Captures where normal and abnormal differ plainly: textured coating 1700–2800, and in
    abnormal ones a large bright patch (+2500, a quarter of the width). Every bundle has both."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    h, w = shape
    for b in range(bundles):
        for k in range(per_bundle):
            a = 2200 + 150 * np.sin(np.arange(w) / 7.0)[None, :] + rng.normal(0, 60, (h, w))
            abnormal = k % 3 == 0
            if abnormal:
                y, x = rng.integers(10, h - 50), rng.integers(5, w - 25)
                a[y:y + 40, x:x + 20] += 2500
            name = f'B{b + 1}/c{k:02d}.tif'
            (root / f'B{b + 1}').mkdir(exist_ok=True)
            tifffile.imwrite(root / name, np.clip(a, 0, 65535).astype(np.uint16))
            rows.append((name, 'abnormal' if abnormal else 'normal', f'B{b + 1}'))
    with open(root / 'labels.csv', 'w', newline='') as f:
        wr = csv.writer(f, lineterminator='\n')
        wr.writerow(['file', 'label', 'bundle', 'note'])
        wr.writerows((*r, '') for r in rows)
    return root


@pytest.fixture(scope='session')
def plain(tmp_path_factory) -> Path:
    return write_plain(tmp_path_factory.mktemp('plain') / 'data')
