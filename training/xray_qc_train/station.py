"""The station's own CLI, for what must be computed by the station's code: global bounds
(`xray-qc bounds`) and packing (`xray-qc model pack`). Found as $XRAY_QC_CLI (a command line),
else this checkout's bin/xray-qc.js run by `node`, else `xray-qc` on PATH."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import List, Sequence, Tuple

from .preprocess import Bounds


class StationError(Exception):
    pass


def cli_command() -> List[str]:
    env = os.environ.get('XRAY_QC_CLI')
    if env:
        return shlex.split(env)
    local = Path(__file__).resolve().parents[2] / 'bin' / 'xray-qc.js'
    if local.is_file() and shutil.which('node'):
        return ['node', str(local)]
    if shutil.which('xray-qc'):
        return ['xray-qc']
    raise StationError('the xray-qc CLI is needed (set XRAY_QC_CLI, or build this checkout with npm run build)')


def run_cli(args: Sequence[str]) -> str:
    r = subprocess.run([*cli_command(), *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise StationError(f'xray-qc {args[0]} failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}')
    return r.stdout


def bounds(paths: Sequence[Path]) -> Tuple[Bounds, int]:
    """The paper's global bounds over these files, by `xray-qc bounds` (rounded to hundreds)."""
    out = json.loads(run_cli(['bounds', '--json', *[str(p) for p in paths]]).strip().splitlines()[-1])
    return (float(out['min']), float(out['max'])), int(out['files'])


def version() -> str:
    """The xray-qc package version (recorded in model cards)."""
    try:
        return run_cli(['--version']).strip()
    except StationError:
        return 'unknown'
