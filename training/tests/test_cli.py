import csv
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FAST = ['--input-size', '64x32', '--epochs', '30', '--backbone', 'random', '--seed', '1']


def run(*args, cwd=None):
    return subprocess.run([sys.executable, '-m', 'xray_qc_train', *map(str, args)], capture_output=True, text=True,
                          env={**__import__('os').environ, 'PYTHONPATH': str(ROOT / 'training')}, cwd=cwd)


def ba(rows):
    """Mean recall over the classes present, from (label, p) pairs; flag when p ≥ 0.5."""
    recalls = []
    for cls in ('abnormal', 'normal'):
        ps = [p for label, p in rows if label == cls]
        if ps:
            recalls.append(np.mean([(p >= 0.5) == (cls == 'abnormal') for p in ps]))
    return 100 * np.mean(recalls)


def pooled_ba(rows):
    c = defaultdict(int)
    for label, p in rows:
        c[(label, p >= 0.5)] += 1
    tpr = c[('abnormal', True)] / (c[('abnormal', True)] + c[('abnormal', False)])
    tnr = c[('normal', False)] / (c[('normal', False)] + c[('normal', True)])
    return 100 * (tpr + tnr) / 2


def test_evaluate_writes_table1_that_predictions_recompute(plain, tmp_path):
    out = tmp_path / 'report'
    r = run('evaluate', '--data', plain, '--out', out, *FAST)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ['folds.json', 'predictions.csv', 'table1.csv', 'table1.md']
    assert 'fold 5/5 (mixed)' in r.stderr and 'features (naive): 40/40' in r.stderr  # progress
    table = list(csv.DictReader(open(out / 'table1.csv')))
    assert [row['bundle'] for row in table] == ['B1', 'B2', 'B3', 'B4', 'B5', 'Overall']
    preds = list(csv.DictReader(open(out / 'predictions.csv')))
    assert len(preds) == 4 * 40
    for method in ('naive', 'global', 'local', 'mixed'):
        mine = [(p['label'], float(p['p_abnormal'])) for p in preds if p['method'] == method]
        for row in table[:-1]:
            rows = [(p['label'], float(p['p_abnormal'])) for p in preds if p['method'] == method and p['bundle'] == row['bundle']]
            assert f'{ba(rows):.2f}' == row[method]
        assert f'{pooled_ba(mine):.2f}' == table[-1][method]
    folds = json.loads((out / 'folds.json').read_text())
    assert len(folds['folds']) == 20 and folds['bounds_from'] == 'train'
    # normal and abnormal differ plainly here: every method separates them
    overall = {m: float(table[-1][m]) for m in ('naive', 'global', 'local', 'mixed')}
    print('plain data, LOBO BA overall:', overall)
    assert min(overall.values()) >= 85, overall
    md = (out / 'table1.md').read_text()
    assert '| **Overall** |' in md and 'pooled across bundles' in md


@pytest.mark.parametrize('edit,message', [
    (lambda d: (d / 'labels.csv').write_text((d / 'labels.csv').read_text().replace('B2/c04.tif,normal', 'B2/c04.tif,abnormall')),
     'labels.csv:14: unknown label "abnormall"'),
    (lambda d: (d / 'B4' / 'c02.tif').unlink(), 'labels.csv:28: missing file B4/c02.tif'),
    (lambda d: (d / 'B1' / 'c05.tif').write_bytes(b'not a tiff'), '1 unreadable capture: B1/c05.tif'),
])
def test_bad_data_one_line_exit_2_nothing_written(plain, tmp_path, edit, message):
    import shutil
    d = tmp_path / 'd'
    shutil.copytree(plain, d)
    edit(d)
    for cmd in (['evaluate'], ['train', '--name', 'm', '--version', '1']):
        out = tmp_path / f'out-{cmd[0]}'
        r = run(*cmd, '--data', d, '--out', out, *FAST)
        assert r.returncode == 2, r.stderr
        lines = [l for l in r.stderr.splitlines() if not l.startswith('[')]
        assert len(lines) == 1 and lines[0].startswith(f'xray-qc {cmd[0]}: {message}'), r.stderr
        assert not out.exists()
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith('.out')] == []  # no staging left


def test_out_that_exists_is_refused(plain, tmp_path):
    (tmp_path / 'r').mkdir()
    (tmp_path / 'r' / 'keep.txt').write_text('x')
    r = run('evaluate', '--data', plain, '--out', tmp_path / 'r', *FAST)
    assert r.returncode == 2 and 'exists and is not empty' in r.stderr
    assert (tmp_path / 'r' / 'keep.txt').read_text() == 'x'
