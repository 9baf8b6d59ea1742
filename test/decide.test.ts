import { describe, expect, it } from 'vitest';
import { abnormalProbability, decide } from '../src/decide/verdict.js';

describe('decide', () => {
  const plain = { threshold: 0.5, reviewBand: null };
  const banded = { threshold: 0.5, reviewBand: [0.3, 0.7] as [number, number] };
  it.each([
    [0, plain, 'pass', 'normal'], [0.4999, plain, 'pass', 'normal'], [0.5, plain, 'flag', 'anomaly'], [1, plain, 'flag', 'anomaly'],
    [0.29, banded, 'pass', 'normal'], [0.3, banded, 'flag', 'uncertain'], [0.69, banded, 'flag', 'uncertain'], [0.7, banded, 'flag', 'anomaly'],
  ] as const)('p=%f → %s', (p, policy, verdict, reason) => {
    expect(decide(p, policy)).toEqual({ verdict, reason });
  });
  it('refuses a non-finite score', () => {
    expect(() => decide(Number.NaN, plain)).toThrow(RangeError);
  });
});

describe('abnormalProbability', () => {
  it('reads softmax outputs as they are', () => {
    expect(abnormalProbability(new Float32Array([0.25, 0.75]), 'softmax', 1)).toBeCloseTo(0.75, 7);
  });
  it('applies a stable softmax to logits', () => {
    expect(abnormalProbability(new Float32Array([0, Math.log(3)]), 'logits', 1)).toBeCloseTo(0.75, 6);
    expect(abnormalProbability(new Float32Array([1000, 1001]), 'logits', 0)).toBeCloseTo(1 / (1 + Math.E), 6);
  });
  it('returns NaN for non-finite outputs', () => {
    expect(abnormalProbability(new Float32Array([Number.NaN, 1]), 'softmax', 1)).toBeNaN();
    expect(abnormalProbability(new Float32Array([Infinity, 1]), 'logits', 1)).toBeNaN();
  });
});
