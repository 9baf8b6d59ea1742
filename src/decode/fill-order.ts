import { XrayError } from '../errors.js';

/**
 * FillOrder (tag 266). 1 (or absent): the bits of each stored byte run from the most significant
 * down, as everything else here assumes. 2: they run the other way. libtiff (tif_read.c,
 * `TIFFFillStrip` / `TIFFFillTile`) reverses the bits of every byte of a block as read from the
 * file — the stored, compressed bytes — before handing them to the codec, for every codec that
 * does not inhibit it (only CCITT fax and JBIG do, and we decode neither); its writer reverses
 * after compressing (`TIFFFlushData1`). We do the same, so such a file decodes to the pixels
 * libtiff, tifffile and OpenCV read. Any other value is refused: the data's meaning is unknown.
 */
export function reversesBits(fillOrder: number | undefined): boolean {
  if (fillOrder === undefined || fillOrder === 1) return false;
  if (fillOrder === 2) return true;
  throw new XrayError('TIFF_BAD_TAG', `FillOrder is ${fillOrder}, expected 1 or 2`);
}

/** Each byte value with its bits in the opposite order. */
const REVERSED = Uint8Array.from({ length: 256 }, (_, v) => {
  let r = 0;
  for (let b = 0; b < 8; b++) r |= ((v >> b) & 1) << (7 - b);
  return r;
});

/**
 * Bit-reverses blocks into one buffer it reuses (grown to the largest block seen), leaving the
 * file's bytes untouched: they may be a reused read buffer that someone else looks at again.
 */
export class BitReverser {
  private buffer = new Uint8Array(0);

  /** The bytes of `src` with the bits of each reversed; valid until the next call. */
  reverse(src: Uint8Array): Uint8Array {
    if (this.buffer.length < src.length) this.buffer = new Uint8Array(src.length);
    const out = this.buffer;
    for (let i = 0; i < src.length; i++) out[i] = REVERSED[src[i]];
    return out.subarray(0, src.length);
  }
}
