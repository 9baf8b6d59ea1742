import { PNG } from 'pngjs';

/**
 * The review page's icon, drawn here (nothing downloaded): an electrode — dark coating inside a
 * bright uncoated border — with a red spot, 16 × 16 cells shown at 32 × 32 px, served as
 * /favicon.ico: an ICO file holding one PNG image (the format browsers accept since Windows Vista).
 */

const ART = [
  '................',
  '.oooooooooooooo.',
  '.oo##########oo.',
  '.o############o.',
  '.o############o.',
  '.o####yy######o.',
  '.o###yrry#####o.',
  '.o###yrry#####o.',
  '.o####yy######o.',
  '.o############o.',
  '.o############o.',
  '.o############o.',
  '.o############o.',
  '.oo##########oo.',
  '.oooooooooooooo.',
  '................',
];
const COLOURS: Record<string, [number, number, number, number]> = {
  '.': [0, 0, 0, 0], o: [224, 228, 232, 255], '#': [55, 71, 79, 255], y: [255, 193, 7, 255], r: [198, 40, 40, 255],
};

function iconPng(scale = 2): Buffer {
  const n = ART.length * scale;
  const png = new PNG({ width: n, height: n });
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) png.data.set(COLOURS[ART[Math.floor(y / scale)][Math.floor(x / scale)]], 4 * (y * n + x));
  }
  return PNG.sync.write(png);
}

/** ICONDIR (6 bytes) + one ICONDIRENTRY (16 bytes) + the PNG. */
export function faviconIco(): Buffer {
  const png = iconPng();
  const head = Buffer.alloc(22);
  head.writeUInt16LE(0, 0); // reserved
  head.writeUInt16LE(1, 2); // 1 = icon
  head.writeUInt16LE(1, 4); // one image
  head.writeUInt8(32, 6); // width
  head.writeUInt8(32, 7); // height
  head.writeUInt8(0, 8); // no palette
  head.writeUInt8(0, 9);
  head.writeUInt16LE(1, 10); // colour planes
  head.writeUInt16LE(32, 12); // bits per pixel
  head.writeUInt32LE(png.length, 14);
  head.writeUInt32LE(22, 18); // where the PNG starts
  return Buffer.concat([head, png]);
}
