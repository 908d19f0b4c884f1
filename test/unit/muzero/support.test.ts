/** h-transform and two-hot encoding (spec invariant 7), targets past the end (invariant 9). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CategoricalSupport, hInverse, hTransform } from '../../../models/muzero/support.js';
import { nStepValueTargets, valueTargetAt } from '../../../trainer/muzero/targets.js';

describe('h-transform', () => {
  it('matches hand values: h(0) = 0, h(3) = √4 − 1 + 0.003 = 1.003, h(−8) = −(3 − 1) − 0.008', () => {
    expect(hTransform(0)).toBe(0);
    expect(hTransform(3)).toBeCloseTo(1.003, 15);
    expect(hTransform(-8)).toBeCloseTo(-2.008, 15);
  });

  it('|h⁻¹(h(x)) − x| ≤ 1e-4·max(1, |x|) (invariant 7)', () => {
    fc.assert(
      fc.property(fc.double({ min: -1e6, max: 1e6, noNaN: true }), (x) => {
        expect(Math.abs(hInverse(hTransform(x)) - x)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(x)));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('two-hot encoding on the support −S..S', () => {
  it('puts 1 − frac and frac on the neighbouring bins of y = h(scale·x)', () => {
    const support = new CategoricalSupport(3, 1);
    const out = new Float32Array(7);
    support.encode(3, out); // y = 1.003 → bins 1 and 2 (indices 4 and 5)
    expect(out[4]).toBeCloseTo(0.997, 6);
    expect(out[5]).toBeCloseTo(0.003, 6);
    expect(out[0] + out[1] + out[2] + out[3] + out[6]).toBe(0);
  });

  it('targets sum to 1 and their expectation is h(scale·x), inside the support (invariant 7)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }),
        fc.double({ min: 0.5, max: 200, noNaN: true }),
        fc.double({ min: -2, max: 2, noNaN: true }),
        (S, scale, x) => {
          const support = new CategoricalSupport(S, scale);
          const out = new Float32Array(support.size);
          support.encode(x, out);
          const sum = out.reduce((a, b) => a + b, 0);
          expect(sum).toBeCloseTo(1, 6);
          const expectation = out.reduce((acc, p, i) => acc + p * (i - S), 0);
          const y = Math.min(S, Math.max(-S, hTransform(scale * x)));
          expect(expectation).toBeCloseTo(y, 4);
          for (const p of out) expect(p).toBeGreaterThanOrEqual(0);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('decodes its own encoding back to x (values inside the support)', () => {
    const support = new CategoricalSupport(20, 100);
    for (const x of [0, 0.013, 0.25, 0.999, -0.4]) {
      const out = new Float32Array(support.size);
      support.encode(x, out);
      expect(support.decodeProbabilities(out)).toBeCloseTo(x, 5);
    }
  });

  it('clamps values beyond the support to its ends', () => {
    const support = new CategoricalSupport(2, 1);
    const out = new Float32Array(5);
    support.encode(1e6, out);
    expect(Array.from(out)).toEqual([0, 0, 0, 0, 1]);
  });
});

describe('n-step value targets z_t = Σ_{i<n} γ^i u_{t+1+i} + γ^n ν_{t+n}', () => {
  it('hand-computed: rewards [1, 2, 3, 4], values [10, 20, 30, 40], n = 2, γ = 0.5', () => {
    // z0 = 1 + 0.5·2 + 0.25·30 = 9.5; z1 = 2 + 1.5 + 0.25·40 = 13.5; z2 = 3 + 2 + 0 (ν4 is past the end) = 5; z3 = 4.
    expect(Array.from(nStepValueTargets([1, 2, 3, 4], [10, 20, 30, 40], 2, 0.5))).toEqual([9.5, 13.5, 5, 4]);
  });

  it('is the Monte-Carlo return when n ≥ L and γ = 1', () => {
    expect(Array.from(nStepValueTargets([0.1, 0, 0.25], [9, 9, 9], 10, 1)).map((x) => Number(x.toFixed(6)))).toEqual([0.35, 0.25, 0.25]);
  });

  it('is 0 at and past the terminal state (invariant 9)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 0, max: 10 }),
        (rewards, n, beyond) => {
          const values = rewards.map((r) => r + 1);
          expect(valueTargetAt(rewards, values, rewards.length + beyond, n, 1)).toBe(0);
        },
      ),
    );
  });
});
