import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { Inflater, TESTED_NODE_MAJORS } from '../src/decode/inflate.js';

/** Same bytes, lengths and error codes from the reused native stream and from inflateSync. */
describe('Inflater (reused zlib stream, straight into place)', () => {
  const reused = new Inflater();
  const fallback = new Inflater(false);

  const outcome = (inflater: Inflater, src: Uint8Array, size: number): string => {
    const dst = new Uint8Array(size);
    try {
      const n = inflater.inflateInto(src, dst);
      return `ok ${n} ${Buffer.from(dst.subarray(0, n)).toString('base64')}`;
    } catch (err) {
      return `error ${(err as { code?: string }).code}: ${(err as Error).message}`;
    }
  };
  const both = (src: Uint8Array, size: number): string => {
    const a = outcome(reused, src, size);
    expect(outcome(fallback, src, size)).toBe(a);
    return a;
  };

  let seed = 7;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  const data = Uint8Array.from({ length: 36_640 }, (_, i) => (i % 3 === 0 ? rand() : i & 0xff));
  const stream = deflateSync(data);

  it('uses the native stream on the Node versions it was tested on, inflateSync elsewhere', () => {
    expect(reused.reusing).toBe(TESTED_NODE_MAJORS.includes(Number(process.versions.node.split('.')[0])));
    expect(fallback.reusing).toBe(false);
  });

  it('decodes valid streams, exactly filling, short of and with room to spare', () => {
    expect(both(stream, data.length)).toBe(`ok ${data.length} ${Buffer.from(data).toString('base64')}`);
    expect(both(stream, data.length + 100)).toMatch(new RegExp(`^ok ${data.length} `));
    expect(both(deflateSync(new Uint8Array(0)), 10)).toBe('ok 0 ');
    // trailing bytes after the stream's end are ignored
    expect(both(Buffer.concat([stream, Buffer.from('garbage')]), data.length)).toMatch(/^ok 36640 /);
    // many in a row on one stream (it is reset between blocks)
    for (let k = 1; k < 40; k++) {
      const piece = data.subarray(0, k * 900);
      expect(both(deflateSync(piece, { level: k % 10 }), piece.length)).toBe(`ok ${piece.length} ${Buffer.from(piece).toString('base64')}`);
    }
  });

  it('refuses a stream that goes on past its room, one cut short and garbage, and recovers', () => {
    expect(both(stream, data.length - 1)).toMatch(/^error TIFF_CORRUPT_DATA: deflate block inflates past its declared 36639 bytes/);
    expect(both(stream.subarray(0, stream.length - 9), data.length)).toMatch(/^error TIFF_CORRUPT_DATA: deflate block: unexpected end of file/);
    expect(both(stream.subarray(0, stream.length - 2), data.length)).toMatch(/^error TIFF_CORRUPT_DATA: deflate block: unexpected end of file/);
    const flipped = Uint8Array.from(stream);
    flipped[2] ^= 0xff;
    expect(both(flipped, data.length)).toMatch(/^error TIFF_CORRUPT_DATA: deflate block: /);
    expect(both(Uint8Array.from({ length: 500 }, rand), 1000)).toMatch(/^error TIFF_CORRUPT_DATA: deflate block: incorrect header check/);
    // a good block right after the errors decodes normally
    expect(both(stream, data.length)).toBe(`ok ${data.length} ${Buffer.from(data).toString('base64')}`);
  });
});
