#!/usr/bin/python3
"""Writes 16-bit grayscale TIFFs with other tools (tifffile, OpenCV, ImageMagick, libtiff's
tiffcp, GDAL's gdal_translate) in every encoding xray-qc must read, plus the source arrays, for the decoder and parity tests.

usage: make_kit.py OUTDIR [--width W --height H --seed S]
Writes OUTDIR/kit.json: [{"file", "source", "invert", "tool", "desc"}].
"""
import argparse, json, os, subprocess, sys
import numpy as np
import tifffile, cv2

# Debian's ImageMagick; a `convert` earlier on PATH may be a wrapper.
CONVERT = '/usr/bin/convert' if os.path.exists('/usr/bin/convert') else 'convert'


def electrode(w, h, rng):
    """A non-trivial electrode-like image: coating 1700-2800 with texture, bright border, defects."""
    y, x = np.mgrid[0:h, 0:w]
    img = 2200 + 300 * np.sin(x / 37.0) * np.cos(y / 53.0) + rng.normal(0, 60, (h, w))
    img[:, : w // 20] = 9000 + rng.normal(0, 200, (h, w // 20))
    img[: h // 40, :] = 12000
    cy, cx = h // 3, w // 2
    img[(y - cy) ** 2 + (x - cx) ** 2 < (min(w, h) // 10) ** 2] -= 500
    img[h // 2 : h // 2 + 3, w // 5 : 4 * w // 5] = 3500
    img.flat[rng.integers(0, w * h, 50)] = 65535
    img.flat[rng.integers(0, w * h, 50)] = 0
    return np.clip(img, 0, 65535).astype(np.uint16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out')
    ap.add_argument('--width', type=int, default=203)
    ap.add_argument('--height', type=int, default=371)
    ap.add_argument('--seed', type=int, default=1)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    a = electrode(args.width, args.height, rng)
    np.save(os.path.join(args.out, 'source.npy'), a)
    kit = []

    def add(name, tool, desc, invert=False):
        kit.append({'file': name, 'source': 'source.npy', 'invert': invert, 'tool': tool, 'desc': desc})

    p = lambda n: os.path.join(args.out, n)
    # tifffile: uncompressed, deflate (8 and 32946), predictor, byte orders, strips, tiles, BigTIFF
    for order, oname in (('<', 'le'), ('>', 'be')):
        tifffile.imwrite(p(f'tf_none_{oname}.tif'), a, byteorder=order)
        add(f'tf_none_{oname}.tif', 'tifffile', f'uncompressed {oname}')
        for comp, cname in (('adobe_deflate', 'deflate8'), ('deflate', 'deflate32946')):
            for pred in (False, True):
                n = f'tf_{cname}_{"pred_" if pred else ""}{oname}.tif'
                tifffile.imwrite(p(n), a, byteorder=order, compression=comp, predictor=pred, rowsperstrip=16)
                add(n, 'tifffile', f'{cname} predictor={pred} {oname}')
        tifffile.imwrite(p(f'tf_tiled_{oname}.tif'), a, byteorder=order, tile=(64, 48), compression='adobe_deflate', predictor=True)
        add(f'tf_tiled_{oname}.tif', 'tifffile', f'tiled 48x64 deflate+pred {oname}')
        tifffile.imwrite(p(f'tf_bigtiff_{oname}.tif'), a, byteorder=order, bigtiff=True, rowsperstrip=5)
        add(f'tf_bigtiff_{oname}.tif', 'tifffile', f'BigTIFF {oname}')
    tifffile.imwrite(p('tf_bigtiff_tiled_deflate.tif'), a, bigtiff=True, tile=(32, 32), compression='adobe_deflate')
    add('tf_bigtiff_tiled_deflate.tif', 'tifffile', 'BigTIFF tiled deflate')
    tifffile.imwrite(p('tf_rows1.tif'), a, rowsperstrip=1)
    add('tf_rows1.tif', 'tifffile', 'one row per strip')
    tifffile.imwrite(p('tf_miniswhite.tif'), a, photometric='miniswhite')
    add('tf_miniswhite.tif', 'tifffile', 'MinIsWhite', invert=True)
    with tifffile.TiffWriter(p('tf_multipage.tif')) as w:
        w.write(a)
        w.write(255 - (a >> 8).astype(np.uint16))
    add('tf_multipage.tif', 'tifffile', 'two pages, first is the capture')
    # OpenCV (libtiff): LZW is its default for 16-bit, deflate and packbits on request
    for comp, cname in ((1, 'none'), (5, 'lzw'), (8, 'deflate'), (32773, 'packbits')):
        cv2.imwrite(p(f'cv_{cname}.tif'), a, [cv2.IMWRITE_TIFF_COMPRESSION, comp])
        add(f'cv_{cname}.tif', 'opencv', cname)
    # ImageMagick from a 16-bit PGM
    pgm = p('source.pgm')
    with open(pgm, 'wb') as f:
        f.write(b'P5\n%d %d\n65535\n' % (args.width, args.height))
        f.write(a.astype('>u2').tobytes())
    im = [
        ('im_none.tif', ['-compress', 'None']),
        ('im_lzw.tif', ['-compress', 'LZW']),
        ('im_lzw_nopred.tif', ['-compress', 'LZW', '-define', 'tiff:predictor=1']),
        ('im_zip_nopred_msb.tif', ['-compress', 'Zip', '-define', 'tiff:predictor=1', '-define', 'tiff:endian=msb']),
        ('im_lzw_pred.tif', ['-compress', 'LZW', '-define', 'tiff:predictor=2']),
        ('im_zip.tif', ['-compress', 'Zip']),
        ('im_zip_pred_msb.tif', ['-compress', 'Zip', '-define', 'tiff:predictor=2', '-define', 'tiff:endian=msb']),
        ('im_lzw_pred_msb.tif', ['-compress', 'LZW', '-define', 'tiff:predictor=2', '-define', 'tiff:endian=msb']),
        ('im_packbits.tif', ['-compress', 'RLE']),
        ('im_rows7_msb.tif', ['-compress', 'None', '-define', 'tiff:rows-per-strip=7', '-define', 'tiff:endian=msb']),
        ('im_tiled_lzw.tif', ['-compress', 'LZW', '-define', 'tiff:tile-geometry=64x64']),
    ]
    for name, opts in im:
        subprocess.run([CONVERT, pgm, '-depth', '16', '-colorspace', 'Gray', '-type', 'Grayscale',
                        '-define', 'quantum:format=unsigned', *opts, p(name)], check=True)
        add(name, 'imagemagick', ' '.join(opts))
    os.remove(pgm)
    # libtiff's own tool, from tifffile's plain file: byte orders, one row per strip (offsets and
    # counts stored out of line), LZW/Deflate/Zstandard with predictor, PackBits, tiles, BigTIFF
    src = p('tf_none_le.tif')
    lt = [
        ('lt_be.tif', ['-B']),
        ('lt_le_rows3.tif', ['-L', '-r', '3']),
        ('lt_be_rows1.tif', ['-B', '-r', '1']),
        ('lt_lzw_pred_be.tif', ['-B', '-c', 'lzw:2', '-r', '4']),
        ('lt_zip_pred_le.tif', ['-L', '-c', 'zip:2']),
        ('lt_packbits_be.tif', ['-B', '-c', 'packbits']),
        ('lt_tiled_lzw_be.tif', ['-B', '-t', '-w', '48', '-l', '32', '-c', 'lzw:2']),
        ('lt_zstd_be.tif', ['-B', '-c', 'zstd', '-r', '2']),
        ('lt_zstd_pred_le.tif', ['-L', '-c', 'zstd:2']),
        ('lt_bigtiff_zstd_tiled_be.tif', ['-8', '-B', '-t', '-w', '32', '-l', '64', '-c', 'zstd:2']),
    ]
    for name, opts in lt:
        subprocess.run(['tiffcp', *opts, src, p(name)], check=True)
        add(name, 'libtiff', ' '.join(opts))
    # GDAL, from the same file
    gd = [
        ('gd_lzw_pred.tif', ['COMPRESS=LZW', 'PREDICTOR=2']),
        ('gd_deflate_pred_tiled_be.tif', ['COMPRESS=DEFLATE', 'PREDICTOR=2', 'TILED=YES', 'BLOCKXSIZE=64', 'BLOCKYSIZE=32', 'ENDIANNESS=BIG']),
        ('gd_zstd.tif', ['COMPRESS=ZSTD']),
        ('gd_zstd_pred_be.tif', ['COMPRESS=ZSTD', 'PREDICTOR=2', 'ENDIANNESS=BIG', 'BLOCKYSIZE=1']),
        ('gd_packbits.tif', ['COMPRESS=PACKBITS']),
        ('gd_bigtiff_zstd_tiled.tif', ['COMPRESS=ZSTD', 'BIGTIFF=YES', 'TILED=YES', 'BLOCKXSIZE=32', 'BLOCKYSIZE=32']),
        ('gd_none_be_rows5.tif', ['ENDIANNESS=BIG', 'BLOCKYSIZE=5']),
    ]
    for name, opts in gd:
        co = [x for o in opts for x in ('-co', o)]
        subprocess.run(['gdal_translate', '-q', *co, src, p(name)], check=True)
        add(name, 'gdal', ' '.join(opts))
    with open(p('kit.json'), 'w') as f:
        json.dump(kit, f, indent=1)


if __name__ == '__main__':
    main()
