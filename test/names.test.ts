import { describe, expect, it } from 'vitest';
import { displayName, fsPath, nameFromBytes } from '../src/capture/names.js';

describe('file names that are not UTF-8', () => {
  it('map to a lossless string and back to the same bytes; valid UTF-8 is unchanged', () => {
    const cases = [
      Buffer.from('/c/plain.tif'),
      Buffer.from('/c/Elektrode_ä_ü.tif'), // valid UTF-8
      Buffer.concat([Buffer.from('/c/Elektrode_'), Buffer.of(0xe4), Buffer.from('.tif')]), // ISO-8859-1 ä
      Buffer.of(0x2f, 0xff, 0xfe, 0x80, 0xc3), // stray bytes, a truncated sequence at the end
      Buffer.of(0x2f, 0xed, 0xa0, 0x80), // an encoded surrogate: not valid UTF-8
      Buffer.of(0x2f, 0xc0, 0xaf), // overlong '/'
      Buffer.from('/c/𝔛-ray.tif'), // 4-byte sequence
    ];
    for (const raw of cases) {
      const name = nameFromBytes(raw);
      expect(name).not.toContain('\ufffd');
      const back = fsPath(name);
      expect(Buffer.isBuffer(back) ? back : Buffer.from(back)).toEqual(raw);
    }
    expect(nameFromBytes(Buffer.from('/c/Elektrode_ä.tif'))).toBe('/c/Elektrode_ä.tif');
    expect(typeof fsPath('/c/Elektrode_ä.tif')).toBe('string');
    expect(displayName(nameFromBytes(cases[2]))).toBe('/c/Elektrode_\\xE4.tif');
  });
});
