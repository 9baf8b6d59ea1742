/** mulberry32: a small, fast PRNG, deterministic across platforms. Returns floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Approximately normal N(0, 1) from four uniforms (Irwin–Hall), cheap enough per pixel. */
export function gaussian(rand: () => number): () => number {
  return () => (rand() + rand() + rand() + rand() - 2) * Math.sqrt(3);
}
