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
  const { xofs, alpha, yofs, beta } = plan;
  // Horizontal pass results for the two source rows the current output row needs.
  let rowA = new Int32Array(dw);
  let rowB = new Int32Array(dw);
  let rowAIndex = -1;
  let rowBIndex = -1;
  const hresize = (sy: number, into: Int32Array): void => {
    const base = sy * sw;
    for (let dx = 0; dx < dw; dx++) {
      const sx = xofs[dx];
      const a1 = alpha[2 * dx + 1];
      into[dx] = a1 === 0 ? src[base + sx] * alpha[2 * dx] : src[base + sx] * alpha[2 * dx] + src[base + sx + 1] * a1;
    }
  };
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
      if (sy1 === sy0) rowB.set(rowA);
      else hresize(sy1, rowB);
      rowBIndex = sy1;
    }
    const b0 = beta[2 * dy];
    const b1 = beta[2 * dy + 1];
    const o = dy * dw;
    for (let dx = 0; dx < dw; dx++) {
      out[o + dx] = (((b0 * (rowA[dx] >> 4)) >> 16) + ((b1 * (rowB[dx] >> 4)) >> 16) + 2) >> 2;
    }
  }
  return out;
}

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
