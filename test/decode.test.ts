import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeTiffFile } from '../src/decode/capture-file.js';
import { makeKit, readNpy, tempDir, type KitEntry } from './helpers.js';

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
});

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
