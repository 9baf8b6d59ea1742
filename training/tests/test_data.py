import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from xray_qc_train.data import DataError, check_readable, load_dataset


def copy(plain: Path, tmp_path: Path) -> Path:
    d = tmp_path / 'd'
    shutil.copytree(plain, d)
    return d


def edit_csv(d: Path, line: int, text: str) -> None:
    lines = (d / 'labels.csv').read_text().splitlines()
    lines[line - 1] = text
    (d / 'labels.csv').write_text('\n'.join(lines) + '\n')


def test_labels_csv_loads_with_extra_columns(plain):
    ds = load_dataset(plain)
    assert len(ds.samples) == 40 and ds.bundles == ['B1', 'B2', 'B3', 'B4', 'B5'] and ds.source == 'labels.csv'
    assert ds.counts()['B1'] == {'normal': 5, 'abnormal': 3}
    assert len(ds.labels_sha256) == 64 and len(ds.files_sha256()) == 64


@pytest.mark.parametrize('line,text,message', [
    (17, 'B2/c07.tif,abnormall,B2,', 'labels.csv:17: unknown label "abnormall" (normal or abnormal)'),
    (3, 'B1/nope.tif,normal,B1,', 'labels.csv:3: missing file B1/nope.tif'),
    (4, 'B1/c00.tif,normal,B1,', 'labels.csv:4: "B1/c00.tif" is listed again (first on line 2)'),
    (5, '../etc/passwd,normal,B1,', 'labels.csv:5: file "../etc/passwd" must be a path inside'),
    (6, 'B1/c04.tif,normal,,', 'labels.csv:6: empty bundle'),
    (1, 'file,label,note', 'labels.csv:1: missing column bundle (need file,label,bundle)'),
])
def test_bad_labels_are_one_line_each(plain, tmp_path, line, text, message):
    d = copy(plain, tmp_path)
    edit_csv(d, line, text)
    with pytest.raises(DataError) as e:
        load_dataset(d)
    assert str(e.value).startswith(message)
    assert '\n' not in str(e.value)


def test_folder_layout_without_csv(tmp_path):
    for b in ('lot-a', 'lot-b'):
        for label in ('normal', 'abnormal'):
            (tmp_path / b / label).mkdir(parents=True)
            tifffile.imwrite(tmp_path / b / label / 'x.tif', np.full((40, 40), 2000, np.uint16))
    ds = load_dataset(tmp_path)
    assert ds.source == 'folders' and ds.bundles == ['lot-a', 'lot-b']
    assert sorted(s.file for s in ds.samples)[0] == 'lot-a/abnormal/x.tif'
    (tmp_path / 'lot-a' / 'broken').mkdir()
    with pytest.raises(DataError, match='unknown label folder "broken"'):
        load_dataset(tmp_path)


def test_unreadable_capture_is_listed_and_refused_unless_skipped(plain, tmp_path):
    d = copy(plain, tmp_path)
    (d / 'B3' / 'c01.tif').write_bytes(b'II*\x00' + b'\x00' * 20)
    ds = load_dataset(d)
    with pytest.raises(DataError, match=r'^1 unreadable capture: B3/c01.tif \(.*\) \(--skip-unreadable to leave them out\)$'):
        check_readable(ds, skip_unreadable=False)
    kept, bad = check_readable(ds, skip_unreadable=True)
    assert [f for f, _ in bad] == ['B3/c01.tif'] and len(kept.samples) == 39


def test_single_class_bundle_is_allowed_and_said(plain, tmp_path):
    d = copy(plain, tmp_path)
    text = (d / 'labels.csv').read_text().replace('abnormal,B5', 'normal,B5')
    (d / 'labels.csv').write_text(text)
    assert load_dataset(d).single_class_bundles() == ['B5']
