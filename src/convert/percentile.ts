/**
 * Exact percentiles of 16-bit data through a 65,536-bin histogram, in NumPy's default
 * definition (`np.percentile(a, q)`, method "linear", including its two-sided lerp), so bounds
 * computed here equal the training pipeline's to the last bit.
 */

export function histogram16(data: Uint16Array, into: Float64Array = new Float64Array(65536)): Float64Array {
  // Counts fit a Uint32 per image; a Float64Array lets `bounds` add up thousands of images.
  const counts = new Uint32Array(65536);
  for (let i = 0; i < data.length; i++) counts[data[i]]++;
  for (let v = 0; v < 65536; v++) into[v] += counts[v];
  return into;
}

/** The value of the k-th smallest element (0-based) described by a histogram. */
function kthValue(hist: Float64Array, k: number, cursor: { value: number; below: number }): number {
  // `cursor` lets successive calls with growing k continue where the last stopped.
  if (k < cursor.below) {
    cursor.value = 0;
    cursor.below = 0;
  }
  while (cursor.below + hist[cursor.value] <= k) {
    cursor.below += hist[cursor.value];
    cursor.value++;
  }
  return cursor.value;
}

/** NumPy's `np.percentile(data, qs)` for ascending qs in [0, 100], from a histogram. */
export function percentilesFromHistogram(hist: Float64Array, qs: number[]): number[] {
  let n = 0;
  for (let v = 0; v < 65536; v++) n += hist[v];
  if (n === 0) throw new RangeError('percentile of an empty set');
  const cursor = { value: 0, below: 0 };
  return qs.map((q) => {
    const quantile = q / 100;
    const virtual = (n - 1) * quantile;
    let prev = Math.floor(virtual);
    let next = prev + 1;
    if (virtual >= n - 1) {
      prev = n - 1;
      next = n - 1;
    }
    const a = kthValue(hist, prev, cursor);
    const b = kthValue(hist, next, { ...cursor });
    const gamma = virtual - Math.floor(virtual);
    const diff = b - a;
    return gamma >= 0.5 ? b - diff * (1 - gamma) : a + diff * gamma;
  });
}

export function percentiles16(data: Uint16Array, qs: number[]): number[] {
  return percentilesFromHistogram(histogram16(data), qs);
}
