import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeTiffFile } from '../src/decode/capture-file.js';
import { checkTiffStructure, readIntegerTag } from '../src/decode/tiff-structure.js';
import { makeKit, pythonInline, readNpy, tempDir, type KitEntry } from './helpers.js';

describe('TIFF decoding of files written by other tools', () => {
  let dir: string;
  let kit: KitEntry[];
  beforeAll(() => {
    dir = tempDir();
    kit = makeKit(dir);
  });

  it('covers every encoding the scoring contract names', () => {
    const descs = kit.map((k) => `${k.tool} ${k.desc}`).join('\n');
    for (const needle of ['lzw', 'deflate8', 'deflate32946', 'packbits', 'RLE', 'tiled', 'BigTIFF', 'be', 'MinIsWhite', 'two pages', 'predictor=True',
      'libtiff -B -r 1', 'libtiff -B -c zstd', 'libtiff -8 -B -t', 'gdal COMPRESS=ZSTD PREDICTOR=2 ENDIANNESS=BIG', 'gdal COMPRESS=ZSTD BIGTIFF=YES TILED=YES']) {
      expect(descs).toContain(needle);
    }
    expect(new Set(kit.map((k) => k.tool))).toEqual(new Set(['tifffile', 'opencv', 'imagemagick', 'libtiff', 'gdal']));
  });

  it('decodes each file to exactly the source pixels', async () => {
    const source = readNpy(join(dir, 'source.npy'));
    const [h, w] = source.shape;
    const failures: string[] = [];
    for (const entry of kit) {
      const image = await decodeTiffFile(join(dir, entry.file));
      expect([entry.file, image.width, image.height]).toEqual([entry.file, w, h]);
      let bad = 0;
      for (let i = 0; i < image.data.length; i++) {
        const want = entry.invert ? 65535 - source.data[i] : source.data[i];
        if (image.data[i] !== want) bad++;
      }
      if (bad) failures.push(`${entry.file} (${entry.tool} ${entry.desc}): ${bad} pixels differ`);
    }
    expect(failures).toEqual([]);
  });

  /** Pixels of `file` that differ from the kit's source (its size checked first). */
  const differing = async (file: string): Promise<number> => {
    const source = readNpy(join(dir, 'source.npy'));
    const image = await decodeTiffFile(join(dir, file));
    expect([file, image.height, image.width]).toEqual([file, ...source.shape]);
    return image.data.reduce((bad, v, i) => bad + (v !== source.data[i] ? 1 : 0), 0);
  };

  it('FillOrder 2 (libtiff tiffcp -f lsb2msb) decodes to the pixels of its FillOrder 1 twin', async () => {
    const layouts: [string, string[]][] = [
      ['none', ['-c', 'none']], ['lzw', ['-c', 'lzw', '-r', '16']], ['lzw_pred_be', ['-B', '-c', 'lzw:2', '-r', '7']],
      ['zip', ['-c', 'zip']], ['zip_pred', ['-c', 'zip:2', '-r', '5']], ['zstd_pred_be', ['-B', '-c', 'zstd:2']],
      ['packbits', ['-c', 'packbits']], ['tiled_lzw_pred_be', ['-B', '-t', '-w', '48', '-l', '32', '-c', 'lzw:2']],
    ];
    const report: string[] = [];
    for (const [name, opts] of layouts) {
      const [one, two] = [`fo1_${name}.tif`, `fo2_${name}.tif`];
      execFileSync('tiffcp', [...opts, join(dir, 'tf_none_le.tif'), join(dir, one)]);
      execFileSync('tiffcp', ['-f', 'lsb2msb', ...opts, join(dir, 'tf_none_le.tif'), join(dir, two)]);
      const bytes = readFileSync(join(dir, two));
      expect(readIntegerTag(bytes, checkTiffStructure(bytes), 266, 'FillOrder')).toEqual([2]);
      // the stored blocks really are the twin's with every byte's bits reversed, so a reader that
      // ignores the tag reads other pixels (uncompressed) or fails (compressed)
      expect(bytes.equals(readFileSync(join(dir, one)))).toBe(false);
      report.push(`${name}: ${await differing(one)} ${await differing(two)}`);
    }
    expect(report).toEqual(layouts.map(([name]) => `${name}: 0 0`));
    // libtiff itself (through OpenCV) reads the FillOrder 2 files to the same pixels
    const libtiff = pythonInline(
      'import sys, numpy as np, cv2\na = np.load(sys.argv[1])\nprint(" ".join(str(int((cv2.imread(f, cv2.IMREAD_UNCHANGED) == a).all())) for f in sys.argv[2:]))',
      [join(dir, 'source.npy'), ...layouts.map(([name]) => join(dir, `fo2_${name}.tif`))],
    );
    expect(libtiff.trim()).toBe(layouts.map(() => '1').join(' '));
    // a FillOrder that is neither 1 nor 2 says nothing we could honour: refused
    const bad = readFileSync(join(dir, 'fo2_none.tif'));
    bad.writeUInt16LE(3, checkTiffStructure(bad).tags.get(266)?.valueAt ?? -1);
    writeFileSync(join(dir, 'fo3_none.tif'), bad);
    await expect(decodeTiffFile(join(dir, 'fo3_none.tif'))).rejects.toMatchObject({ code: 'TIFF_BAD_TAG', message: 'FillOrder is 3, expected 1 or 2' });
  });

  it('an optional tag of an unknown field type is skipped; a needed one is still refused', async () => {
    // Real files with one entry's type field patched to 20 (no TIFF type has that number):
    // tifffile's ImageDescription (inline count, out-of-line value), and in a libtiff big-endian
    // LZW + predictor copy, Software and XResolution (a RATIONAL whose value lies out of line).
    execFileSync('tiffcp', ['-B', '-c', 'lzw:2', '-r', '9', join(dir, 'tf_none_le.tif'), join(dir, 'lt_be_lzw.tif')]);
    const cases: [string, string, number][] = [
      ['tf_none_le.tif', 'odd_description.tif', 270], ['lt_be_lzw.tif', 'odd_software.tif', 305],
      ['lt_be_lzw.tif', 'odd_xresolution.tif', 282], ['tf_none_le.tif', 'odd_compression.tif', 259],
    ];
    for (const [from, to, tag] of cases) writeFileSync(join(dir, to), withFieldType(readFileSync(join(dir, from)), tag, 20));
    expect(await differing('odd_description.tif')).toBe(0);
    expect(await differing('odd_software.tif')).toBe(0);
    expect(await differing('odd_xresolution.tif')).toBe(0);
    expect((await decodeTiffFile(join(dir, 'odd_description.tif'))).text).toEqual({}); // the skipped description is not read
    await expect(decodeTiffFile(join(dir, 'odd_compression.tif'))).rejects.toMatchObject({
      code: 'TIFF_BAD_TAG', message: 'Compression has unknown field type 20, expected an integer type',
    });
    // libtiff agrees: it warns and reads the first three, and refuses the last
    const libtiff = pythonInline(
      'import sys, numpy as np, cv2\na = np.load(sys.argv[1])\nfor f in sys.argv[2:]:\n  c = cv2.imread(f, cv2.IMREAD_UNCHANGED)\n  print("refused" if c is None else int((c == a).all()))',
      [join(dir, 'source.npy'), ...cases.map(([, to]) => join(dir, to))],
    );
    expect(libtiff.trim().split('\n')).toEqual(['1', '1', '1', 'refused']);
  });
});

/** A copy of a classic TIFF whose first directory's entry for `tag` has field type `type`. */
function withFieldType(file: Buffer, tag: number, type: number): Buffer {
  const out = Buffer.from(file);
  const le = out[0] === 0x49;
  const u16 = (at: number): number => (le ? out.readUInt16LE(at) : out.readUInt16BE(at));
  const ifd = le ? out.readUInt32LE(4) : out.readUInt32BE(4);
  for (let i = 0, n = u16(ifd); i < n; i++) {
    const at = ifd + 2 + 12 * i;
    if (u16(at) !== tag) continue;
    if (le) out.writeUInt16LE(type, at + 2);
    else out.writeUInt16BE(type, at + 2);
    return out;
  }
  throw new Error(`tag ${tag} is not in the first directory`);
}

describe('LZW in WebAssembly equals the JavaScript decoder', () => {
  it('same bytes for real streams, same errors and lengths for garbage', async () => {
    const { lzwDecode } = await import('../src/decode/codecs.js');
    const { WasmLzw } = await import('../src/decode/lzw-wasm.js');
    const { encodeTiff16 } = await import('../src/tools/tiff-writer.js');
    const { synthElectrode } = await import('../src/tools/synth.js');
    const wasm = new WasmLzw();
    const run = (src: Uint8Array, cap: number): string => {
      const out = new Uint8Array(cap);
      let js: string;
      try { js = Buffer.from(out.subarray(0, lzwDecode(src, out))).toString('hex'); } catch (e) { js = `error ${(e as Error).message}`; }
      let w: string;
      try { const o = new Uint8Array(cap); w = Buffer.from(o.subarray(0, wasm.decodeInto(src, o))).toString('hex'); } catch (e) { w = `error ${(e as Error).message}`; }
      const kind = (r: string): string => (r.startsWith('error') ? (/before any string|beyond the table/.exec(r)?.[0] ?? r) : 'ok');
      expect(kind(w)).toBe(kind(js)); // the same error, or none
      if (!js.startsWith('error')) expect(w).toBe(js);
      return js;
    };
    // real streams: a whole LZW capture as one strip (our writer), decoded at full and cut capacity
    const img = synthElectrode(5, 'scratch', { width: 300, height: 200 });
    const tif = encodeTiff16(img.width, img.height, img.data, { compression: 'lzw', rowsPerStrip: 200 });
    const off = tif.readUInt32LE(tif.indexOf(Buffer.from([0x11, 0x01, 0x04, 0x00]), 8) + 8); // StripOffsets (LONG)
    const stream = tif.subarray(off);
    expect(run(stream, 300 * 200 * 2).length).toBe(300 * 200 * 2 * 2);
    run(stream, 1000);
    // long strings and runs (flat areas, repeating ramps): multi-chunk copies, overlapping ones
    for (const fill of [(i: number) => 1000, (i: number) => (i % 40) * 3, (i: number) => (i >> 7) & 0xfff]) {
      const data = Uint16Array.from({ length: 300 * 200 }, (_, i) => fill(i));
      const t = encodeTiff16(300, 200, data, { compression: 'lzw', rowsPerStrip: 200 });
      const o = t.readUInt32LE(t.indexOf(Buffer.from([0x11, 0x01, 0x04, 0x00]), 8) + 8);
      expect(run(t.subarray(o), data.byteLength)).toBe(Buffer.from(data.buffer).toString('hex')); // the pixels themselves (little-endian host and file)
    }
    // garbage: random bytes, many seeds
    let seed = 1;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    let errors = 0;
    for (let k = 0; k < 300; k++) {
      const g = Uint8Array.from({ length: 1 + (k % 97) * 7 }, rand);
      if (run(g, 5000).startsWith('error')) errors++;
    }
    expect(errors).toBeGreaterThan(10); // both decoders really reached their error paths
  });

  it('a block too long for the kernel (its bit count is an i32) is refused by it and decoded in JavaScript', async () => {
    const { LzwBlockDecoder, lzwDecode } = await import('../src/decode/codecs.js');
    const { WasmLzw } = await import('../src/decode/lzw-wasm.js');
    const { lzwEncode } = await import('../src/tools/tiff-writer.js');
    const stream = lzwEncode(Uint8Array.from({ length: 64 }, (_, i) => 65 + (i % 7)));
    const huge = new Uint8Array(WasmLzw.MAX_BLOCK + 1); // the stream, then zeros after its end code
    huge.set(stream);
    const kernel = new WasmLzw();
    expect(() => kernel.decodeInto(huge, new Uint8Array(64))).toThrow(RangeError);
    const decoder = new LzwBlockDecoder({} as never);
    decoder.use(kernel);
    const out = new Uint8Array(64);
    const expected = new Uint8Array(64);
    expect(decoder.decodeInto(huge, out)).toBe(lzwDecode(huge, expected));
    expect(Array.from(out)).toEqual(Array.from({ length: 64 }, (_, i) => 65 + (i % 7)));
    expect(out).toEqual(expected);
  });
});

describe('the predictor in WebAssembly equals the JavaScript one', () => {
  it('same samples for every width around the 8-lane step, wrapping at 2^16', async () => {
    const { undoHorizontalPredictor } = await import('../src/decode/tiff.js');
    const { WasmPredictor } = await import('../src/decode/predictor-wasm.js');
    const wasm = new WasmPredictor();
    let seed = 3;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xffff;
    for (const [width, rows] of [[1, 3], [7, 2], [8, 5], [9, 4], [15, 1], [16, 3], [17, 2], [1145, 16], [1145, 8]]) {
      const data = Uint16Array.from({ length: width * rows + 5 }, rand);
      const js = data.slice();
      const w = data.slice();
      undoHorizontalPredictor(js, width, rows);
      wasm.undo(w, width, rows);
      expect(Array.from(w)).toEqual(Array.from(js));
      expect(js.some((v, i) => v !== data[i])).toBe(width > 1); // it did change something
      expect(Array.from(w.subarray(width * rows))).toEqual(Array.from(data.subarray(width * rows))); // and nothing after
    }
  });
});
