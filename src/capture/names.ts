/**
 * File names that are not UTF-8 (an X-ray PC writing ISO-8859-1 "Elektrode_ä.tif", say). Node
 * decodes such a name into U+FFFD replacement characters, and that string no longer opens the
 * file. We name them instead with each byte that is not part of valid UTF-8 mapped to U+EF80 +
 * (byte − 0x80) in the Private Use Area (MirBSD's OPTU-8 scheme): a valid Unicode string that
 * SQLite stores losslessly and that maps back to the exact bytes for opening (`fsPath`).
 * A valid UTF-8 name is its own string, unchanged.
 */

const ESCAPE_BASE = 0xef00; // byte b (0x80–0xff) ↔ U+EF80–U+EFFF
const ESCAPED = /[\uef80-\uefff]/;

/** The string for a raw name (a file name or a whole path) read as bytes. */
export function nameFromBytes(raw: Buffer): string {
  let out = '';
  let i = 0;
  while (i < raw.length) {
    const n = validSequenceLength(raw, i);
    if (n > 0) {
      out += raw.toString('utf8', i, i + n);
      i += n;
    } else {
      out += String.fromCharCode(ESCAPE_BASE + raw[i]);
      i++;
    }
  }
  return out;
}

/** What to pass to `fs` for a path made by `nameFromBytes`: the string itself, or its raw bytes. */
export function fsPath(path: string): string | Buffer {
  if (!ESCAPED.test(path)) return path;
  const parts: Buffer[] = [];
  let text = '';
  for (const ch of path) {
    const c = ch.codePointAt(0)!;
    if (c >= 0xef80 && c <= 0xefff) {
      if (text) parts.push(Buffer.from(text, 'utf8'));
      text = '';
      parts.push(Buffer.of(c - ESCAPE_BASE));
    } else {
      text += ch;
    }
  }
  if (text) parts.push(Buffer.from(text, 'utf8'));
  return Buffer.concat(parts);
}

/** For people: escaped bytes shown as \xNN (logs, audit listings). */
export function displayName(path: string): string {
  return ESCAPED.test(path) ? path.replace(/[\uef80-\uefff]/g, (ch) => `\\x${(ch.charCodeAt(0) - ESCAPE_BASE).toString(16).toUpperCase()}`) : path;
}

/** True when Node's own decoding of a name lost bytes (it holds U+FFFD). */
export function lossyName(name: string): boolean {
  return name.includes('\ufffd');
}

/** Length of the valid UTF-8 sequence starting at `i` (1–4), or 0 when the byte there starts none. */
function validSequenceLength(b: Buffer, i: number): number {
  const c = b[i];
  if (c < 0x80) return 1;
  const cont = (k: number): boolean => i + k < b.length && (b[i + k] & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const c1 = b[i + 1];
    if (c === 0xe0 && c1 < 0xa0) return 0; // overlong
    if (c === 0xed && c1 >= 0xa0) return 0; // surrogates
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const c1 = b[i + 1];
    if (c === 0xf0 && c1 < 0x90) return 0;
    if (c === 0xf4 && c1 >= 0x90) return 0;
    return 4;
  }
  return 0;
}
