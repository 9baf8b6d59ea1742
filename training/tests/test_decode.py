import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xray_qc_train.preprocess import UnreadableCapture, read_capture

ROOT = Path(__file__).resolve().parents[2]


def test_reads_every_file_of_the_station_kit_as_the_station_does(tmp_path):
    """The 50 TIFFs the station's decoder is tested on (tifffile, OpenCV, ImageMagick, tiffcp,
    GDAL; LZW/Deflate/PackBits/Zstd, predictor, tiles, both byte orders, BigTIFF, MinIsWhite):
    the training side must read the same pixels, or train and serve would differ."""
    subprocess.run([sys.executable, str(ROOT / 'test/tools/make_kit.py'), str(tmp_path)], check=True, capture_output=True)
    kit = json.loads((tmp_path / 'kit.json').read_text())
    assert len(kit) >= 50
    for e in kit:
        want = np.load(tmp_path / e['source'])
        if e['invert']:
            want = 65535 - want
        got = read_capture(tmp_path / e['file'])
        assert got.dtype == np.uint16 and got.shape == want.shape, e['file']
        assert np.array_equal(got, want), e['file']


def test_refuses_what_is_not_a_16_bit_single_sample_tiff(tmp_path):
    import tifffile
    tifffile.imwrite(tmp_path / 'rgb.tif', np.zeros((8, 8, 3), np.uint16), photometric='rgb')
    tifffile.imwrite(tmp_path / 'u8.tif', np.zeros((8, 8), np.uint8))
    (tmp_path / 'junk.tif').write_bytes(b'junk')
    for name in ('rgb.tif', 'u8.tif', 'junk.tif'):
        with pytest.raises(UnreadableCapture):
            read_capture(tmp_path / name)
