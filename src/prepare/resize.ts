/**
 * Bilinear resize of an 8-bit plane in OpenCV's INTER_LINEAR convention, bit for bit: pixel
 * centres at +0.5, edge clamp, no antialiasing, 11-bit fixed-point weights computed from a
 * float32 source coordinate, and OpenCV's rounding of the vertical pass
 * (((b0·(S0>>4))>>16) + ((b1·(S1>>4))>>16) + 2) >> 2. An exact 2× downscale in both directions
 * is averaged 2×2, as OpenCV switches INTER_LINEAR to INTER_AREA there.
 *
 * A `ResizePlan` holds the per-column and per-row indices and weights for one source size →
 * destination size, so a station resizing captures of the same size pays for them once.
 */

const COEF_BITS = 11;
const COEF_SCALE = 1 << COEF_BITS;

export interface ResizePlan {
  srcWidth: number;
  srcHeight: number;
  dstWidth: number;
  dstHeight: number;
  area2x: boolean;
  xofs: Int32Array;
  alpha: Int16Array; // two weights per destination column
  yofs: Int32Array;
  beta: Int16Array; // two weights per destination row
}

/**
 * Source index and weights per destination index. Columns clamp index and weight at the edges;
 * rows keep OpenCV's unclamped weights and clamp only the rows they read (the two differ in
 * rounding where an upscale reaches past the first or last row).
 */
function axis(src: number, dst: number, clampWeights: boolean): { ofs: Int32Array; weights: Int16Array } {
  const scale = 1 / (dst / src); // OpenCV: scale_x = 1./inv_scale_x, inv_scale_x = dst/src
  const ofs = new Int32Array(dst);
  const weights = new Int16Array(dst * 2);
  for (let d = 0; d < dst; d++) {
    let f = Math.fround((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = Math.fround(f - s);
    if (clampWeights && s < 0) {
      f = 0;
      s = 0;
    }
    if (clampWeights && s >= src - 1) {
      f = 0;
      s = src - 1;
    }
    ofs[d] = s;
    weights[2 * d] = saturateShort(Math.fround(1 - f) * COEF_SCALE);
    weights[2 * d + 1] = saturateShort(f * COEF_SCALE);
  }
  return { ofs, weights };
}

/** cv::saturate_cast<short>(float): round half to even (cvRound), then clamp. */
function saturateShort(v: number): number {
  let r = Math.round(v);
  if (Math.abs(v - Math.trunc(v)) === 0.5) r = 2 * Math.round(v / 2);
  return Math.max(-32768, Math.min(32767, r));
}

export function planResize(srcWidth: number, srcHeight: number, dstWidth: number, dstHeight: number): ResizePlan {
  const x = axis(srcWidth, dstWidth, true);
  const y = axis(srcHeight, dstHeight, false);
  return {
    srcWidth, srcHeight, dstWidth, dstHeight,
    area2x: srcWidth === dstWidth * 2 && srcHeight === dstHeight * 2,
    xofs: x.ofs, alpha: x.weights, yofs: y.ofs, beta: y.weights,
  };
}

export function resizeLinear(src: Uint8Array, plan: ResizePlan, out: Uint8Array = new Uint8Array(plan.dstWidth * plan.dstHeight)): Uint8Array {
  const { srcWidth: sw, srcHeight: sh, dstWidth: dw, dstHeight: dh } = plan;
  if (src.length !== sw * sh) throw new RangeError(`plane has ${src.length} pixels, plan expects ${sw}×${sh}`);
  if (sw === dw && sh === dh) {
    out.set(src);
    return out;
  }
  if (plan.area2x) return area2x(src, plan, out);
  verticalPass(plan, int32Rows(dw), copyRow, (sy, into) => horizontalPass(src, sy * sw, plan, into), (dy, rowA, rowB, b0, b1) => {
    const o = dy * dw;
    for (let dx = 0; dx < dw; dx++) out[o + dx] = (((b0 * (rowA[dx] >> 4)) >> 16) + ((b1 * (rowB[dx] >> 4)) >> 16) + 2) >> 2;
  });
  return out;
}

/** One source row (starting at `base` in `src`) resized horizontally into 11-bit fixed point. */
function horizontalPass(src: Uint8Array, base: number, plan: ResizePlan, into: Int32Array): void {
  const { xofs, alpha, dstWidth: dw } = plan;
  for (let dx = 0, k = 0; dx < dw; dx++, k += 2) {
    const sx = base + xofs[dx];
    const a1 = alpha[k + 1];
    into[dx] = a1 === 0 ? src[sx] * alpha[k] : src[sx] * alpha[k] + src[sx + 1] * a1;
  }
}

/**
 * Walks the destination rows, keeping the horizontal results of the two source rows each needs
 * (every source row is resized horizontally once), and hands them to `emitRow` with the row's
 * vertical weights. The two row buffers are `rows` (typed arrays here, addresses in the
 * WebAssembly kernel's memory in wasm-resize.ts); `copy` duplicates one into the other.
 */
export function verticalPass<R>(
  plan: ResizePlan,
  rows: [R, R],
  copy: (from: R, to: R) => void,
  hresize: (sy: number, into: R) => void,
  emitRow: (dy: number, rowA: R, rowB: R, b0: number, b1: number) => void,
): void {
  const { srcHeight: sh, dstHeight: dh, yofs, beta } = plan;
  let [rowA, rowB] = rows;
  let rowAIndex = -1;
  let rowBIndex = -1;
  for (let dy = 0; dy < dh; dy++) {
    const sy0 = Math.min(Math.max(yofs[dy], 0), sh - 1);
    const sy1 = Math.min(Math.max(yofs[dy] + 1, 0), sh - 1);
    if (rowAIndex !== sy0) {
      if (rowBIndex === sy0) {
        [rowA, rowB] = [rowB, rowA];
        rowAIndex = sy0;
        rowBIndex = -1;
      } else {
        hresize(sy0, rowA);
        rowAIndex = sy0;
      }
    }
    if (rowBIndex !== sy1) {
      if (sy1 === sy0) copy(rowA, rowB);
      else hresize(sy1, rowB);
      rowBIndex = sy1;
    }
    emitRow(dy, rowA, rowB, beta[2 * dy], beta[2 * dy + 1]);
  }
}

/** Two horizontal-result rows for `verticalPass` on typed arrays. */
function int32Rows(dw: number): [Int32Array, Int32Array] {
  return [new Int32Array(dw), new Int32Array(dw)];
}

const copyRow = (from: Int32Array, to: Int32Array): void => to.set(from);

function area2x(src: Uint8Array, plan: ResizePlan, out: Uint8Array): Uint8Array {
  const { srcWidth: sw, dstWidth: dw, dstHeight: dh } = plan;
  for (let dy = 0; dy < dh; dy++) {
    const r0 = 2 * dy * sw;
    const r1 = r0 + sw;
    for (let dx = 0; dx < dw; dx++) {
      const sx = 2 * dx;
      out[dy * dw + dx] = (src[r0 + sx] + src[r0 + sx + 1] + src[r1 + sx] + src[r1 + sx + 1] + 2) >> 2;
    }
  }
  return out;
}

/**
 * The hot path: 16-bit pixels → lookup table → bilinear resize → normalisation table, fused.
 * Each source row is converted once (into a row buffer) and resized horizontally once; the
 * vertical pass writes the normalised float straight into every channel listed in `targets`.
 * Bit-identical to applyLut + resizeLinear + per-channel tables; no full-size 8-bit plane is made
 * unless `plane` is given (for `preprocess --png`).
 */
export function resizeLutInto(
  data: Uint16Array,
  lut: Uint8Array,
  plan: ResizePlan,
  targets: Array<{ table: Float32Array; offset: number }>,
  out: Float32Array,
  plane?: Uint8Array,
): void {
  const { srcWidth: sw, srcHeight: sh, dstWidth: dw, dstHeight: dh } = plan;
  if (data.length !== sw * sh) throw new RangeError(`image has ${data.length} pixels, plan expects ${sw}×${sh}`);
  if ((sw === dw && sh === dh) || plan.area2x) {
    // Rare shapes: take the plain path.
    const p = resizeLinear(Uint8Array.from(data, (v) => lut[v]), plan);
    for (const t of targets) for (let i = 0; i < p.length; i++) out[t.offset + i] = t.table[p[i]];
    plane?.set(p);
    return;
  }
  const row8 = new Uint8Array(sw);
  const n = targets.length;
  const [t0, t1, t2] = [targets[0], targets[n > 1 ? 1 : 0], targets[n > 2 ? 2 : 0]];
  // The per-pixel loops live in plain functions taking everything as arguments: V8 keeps their
  // locals in registers (the same loops reading closure variables ran ~5× slower, measured).
  verticalPass(plan, int32Rows(dw), copyRow, (sy, into) => {
    lutRow(data, sy * sw, lut, row8, sw);
    horizontalPass(row8, 0, plan, into);
  }, (dy, rowA, rowB, b0, b1) => {
    const o = dy * dw;
    if (n === 3) emit3(rowA, rowB, b0, b1, dw, out, t0.offset + o, t0.table, t1.offset + o, t1.table, t2.offset + o, t2.table);
    else emit1(rowA, rowB, b0, b1, dw, out, t0.offset + o, t0.table);
    if (plane) emitPlane(rowA, rowB, b0, b1, dw, plane, o);
  });
}

function lutRow(data: Uint16Array, base: number, lut: Uint8Array, row8: Uint8Array, sw: number): void {
  for (let x = 0; x < sw; x++) row8[x] = lut[data[base + x]];
}

function emit3(
  rowA: Int32Array, rowB: Int32Array, b0: number, b1: number, dw: number, out: Float32Array,
  o0: number, tab0: Float32Array, o1: number, tab1: Float32Array, o2: number, tab2: Float32Array,
): void {
  for (let dx = 0; dx < dw; dx++) {
    const v = (((b0 * (rowA[dx] >> 4)) >> 16) + ((b1 * (rowB[dx] >> 4)) >> 16) + 2) >> 2;
    out[o0 + dx] = tab0[v];
    out[o1 + dx] = tab1[v];
    out[o2 + dx] = tab2[v];
  }
}

function emit1(rowA: Int32Array, rowB: Int32Array, b0: number, b1: number, dw: number, out: Float32Array, o0: number, tab0: Float32Array): void {
  for (let dx = 0; dx < dw; dx++) out[o0 + dx] = tab0[(((b0 * (rowA[dx] >> 4)) >> 16) + ((b1 * (rowB[dx] >> 4)) >> 16) + 2) >> 2];
}

function emitPlane(rowA: Int32Array, rowB: Int32Array, b0: number, b1: number, dw: number, plane: Uint8Array, o: number): void {
  for (let dx = 0; dx < dw; dx++) plane[o + dx] = (((b0 * (rowA[dx] >> 4)) >> 16) + ((b1 * (rowB[dx] >> 4)) >> 16) + 2) >> 2;
}
