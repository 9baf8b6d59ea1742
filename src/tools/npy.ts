/** NumPy `.npy` (format 1.0) for the dtypes we exchange with Python: float32, uint16, uint8. */

type NpyArray = Float32Array | Uint16Array | Uint8Array;

const DESCR: Record<string, string> = { Float32Array: '<f4', Uint16Array: '<u2', Uint8Array: '|u1' };

export function encodeNpy(data: NpyArray, shape: number[]): Buffer {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new RangeError(`shape ${shape.join('×')} does not match ${data.length} elements`);
  const descr = DESCR[data.constructor.name];
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), body]);
}

export function decodeNpy(bytes: Uint8Array): { data: NpyArray; shape: number[] } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error('not a .npy file');
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '')
    .split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw new Error('Fortran-order arrays are not supported');
  const offset = start + headerLen;
  const body = new Uint8Array(buf.subarray(offset)).slice(); // aligned copy
  switch (descr) {
    case '<f4': return { data: new Float32Array(body.buffer), shape };
    case '<u2': return { data: new Uint16Array(body.buffer), shape };
    case '|u1': case '<u1': return { data: body, shape };
    default: throw new Error(`unsupported dtype ${descr}`);
  }
}
