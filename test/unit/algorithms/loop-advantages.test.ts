/**
 * LOOP steps 5, 6 and 8 without tensors: advantages, the |A| filter, straggler exclusion and the
 * minibatch plan (spec invariants 1, 2, 3 and 10).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TrainingError } from '../../../core/errors.js';
import { Rng } from '../../../core/rng.js';
import {
  clipBounds,
  filterByAdvantage,
  groupAdvantages,
  groupRollouts,
  minibatchDivisor,
  planMinibatches,
  shouldAbort,
} from '../../../trainer/algorithms/loop.js';

const LOO = { baseline: 'leave-one-out', normalize: 'none' } as const;
const rewardArb = fc.double({ min: 0, max: 1, noNaN: true });

describe('groupAdvantages', () => {
  it('leave-one-out: A_k = R_k − mean of the others', () => {
    // R = [1, 0, 0.5, 0.5]:
    //   A_1 = 1   − (0 + 0.5 + 0.5)/3 =  2/3
    //   A_2 = 0   − (1 + 0.5 + 0.5)/3 = −2/3
    //   A_3 = 0.5 − (1 + 0 + 0.5)/3   =  0      (same for A_4)
    const a = groupAdvantages([1, 0, 0.5, 0.5], LOO);
    expect(a[0]).toBeCloseTo(2 / 3, 12);
    expect(a[1]).toBeCloseTo(-2 / 3, 12);
    expect(a[2]).toBeCloseTo(0, 12);
    expect(a[3]).toBeCloseTo(0, 12);
  });

  it('group-mean: A_k = R_k − mean R (GRPO baseline)', () => {
    // mean = 0.5 → [0.5, −0.5, 0, 0]
    const a = groupAdvantages([1, 0, 0.5, 0.5], { baseline: 'group-mean', normalize: 'none' });
    expect(a.map((x) => +x.toFixed(12))).toEqual([0.5, -0.5, 0, 0]);
  });

  it('std normalisation divides by the sample std of the group', () => {
    // deviations from 0.5: [0.5, −0.5, 0, 0]; Σd² = 0.5; sample variance 0.5/3 = 1/6; std = 0.4082483.
    // LOO: (2/3)/0.4082483 = 1.6329932; group-mean: 0.5/0.4082483 = 1.2247449.
    const loo = groupAdvantages([1, 0, 0.5, 0.5], { baseline: 'leave-one-out', normalize: 'std' });
    expect(loo[0]).toBeCloseTo(1.6329932, 5);
    expect(loo[1]).toBeCloseTo(-1.6329932, 5);
    const mean = groupAdvantages([1, 0, 0.5, 0.5], { baseline: 'group-mean', normalize: 'std' });
    expect(mean[0]).toBeCloseTo(1.2247449, 5);
  });

  it('a group of one has no baseline: advantage 0; an empty group gives []', () => {
    expect(groupAdvantages([0.7], LOO)).toEqual([0]);
    expect(groupAdvantages([0.7], { baseline: 'group-mean', normalize: 'std' })).toEqual([0]);
    expect(groupAdvantages([], LOO)).toEqual([]);
  });

  it('rejects a non-finite return', () => {
    expect(() => groupAdvantages([1, Number.NaN], LOO)).toThrow(TrainingError);
  });

  it('invariant 1: LOO advantages sum to 0 and equal K/(K−1)·(R_k − mean R)', () => {
    fc.assert(
      fc.property(fc.array(rewardArb, { minLength: 2, maxLength: 12 }), (returns) => {
        const k = returns.length;
        const mean = returns.reduce((a, b) => a + b, 0) / k;
        const a = groupAdvantages(returns, LOO);
        expect(Math.abs(a.reduce((x, y) => x + y, 0))).toBeLessThan(1e-12);
        a.forEach((ak, i) => {
          expect(ak).toBeCloseTo((k / (k - 1)) * (returns[i] - mean), 12);
          const others = returns.filter((_, j) => j !== i);
          expect(ak).toBeCloseTo(returns[i] - others.reduce((x, y) => x + y, 0) / (k - 1), 12);
        });
      }),
    );
  });

  it('invariant 2: an all-equal group gives exactly zero advantages, all removed by the filter', () => {
    fc.assert(
      fc.property(rewardArb, fc.integer({ min: 2, max: 12 }), fc.constantFrom('none', 'std'), (value, k, normalize) => {
        const a = groupAdvantages(Array(k).fill(value), { baseline: 'leave-one-out', normalize });
        expect(a.every((x) => x === 0)).toBe(true);
        expect(
          filterByAdvantage(
            a.map((advantage) => ({ advantage })),
            0.01,
          ),
        ).toEqual([]);
      }),
    );
    // A value whose repeated sum does not round-trip: 0.1 + 0.1 + 0.1 = 0.30000000000000004.
    expect(groupAdvantages([0.1, 0.1, 0.1], LOO)).toEqual([0, 0, 0]);
  });

  it('invariant 3: scaling the rewards by c > 0 scales the advantages by c', () => {
    fc.assert(
      fc.property(fc.array(rewardArb, { minLength: 2, maxLength: 10 }), fc.double({ min: 0.01, max: 100, noNaN: true }), (returns, c) => {
        const base = groupAdvantages(returns, LOO);
        const scaled = groupAdvantages(
          returns.map((r) => c * r),
          LOO,
        );
        scaled.forEach((s, i) => expect(Math.abs(s - c * base[i])).toBeLessThan(1e-9 * Math.max(1, c)));
      }),
    );
    // By hand: R = [1, 0] → A = [1, −1]; 3R = [3, 0] → A = [3, −3].
    expect(groupAdvantages([3, 0], LOO)).toEqual([3, -3]);
  });
});

describe('filterByAdvantage', () => {
  it('keeps |A| ≥ threshold in order', () => {
    const scored = [{ advantage: 0.5 }, { advantage: -0.009 }, { advantage: 0.01 }, { advantage: -0.2 }, { advantage: 0 }];
    expect(filterByAdvantage(scored, 0.01)).toEqual([{ advantage: 0.5 }, { advantage: 0.01 }, { advantage: -0.2 }]);
    expect(filterByAdvantage(scored, 0)).toHaveLength(5);
  });
});

describe('groupRollouts', () => {
  it('invariant 10: a cancelled straggler never enters the baseline', () => {
    // Group a: finished R = 1, 0, 0.5, 0.5 plus two cancelled stragglers (rewards 0 and 1 must not count).
    // Without them (K' = 4) the advantages are [2/3, −2/3, 0, 0]; had the stragglers been scored as 0,
    // A_1 would be 1 − (0 + 0.5 + 0.5 + 0 + 0)/5 = 0.8 instead.
    // Group b: R = 1, 0 → [1, −1].
    const rollouts = [
      { id: 'a0', groupId: 'a', reward: 1, cancelled: false },
      { id: 'b0', groupId: 'b', reward: 1, cancelled: false },
      { id: 'a1', groupId: 'a', reward: 0, cancelled: false },
      { id: 'a4', groupId: 'a', reward: 0, cancelled: true },
      { id: 'a2', groupId: 'a', reward: 0.5, cancelled: false },
      { id: 'b1', groupId: 'b', reward: 0, cancelled: false },
      { id: 'a5', groupId: 'a', reward: 1, cancelled: true },
      { id: 'a3', groupId: 'a', reward: 0.5, cancelled: false },
    ];
    const scored = groupRollouts(rollouts, LOO);
    expect(scored.map((s) => s.rollout.id)).toEqual(['a0', 'b0', 'a1', 'a2', 'b1', 'a3']);
    const byId = Object.fromEntries(scored.map((s) => [s.rollout.id, s.advantage]));
    expect(byId.a0).toBeCloseTo(2 / 3, 12);
    expect(byId.a1).toBeCloseTo(-2 / 3, 12);
    expect(byId.a2).toBeCloseTo(0, 12);
    expect(byId.a3).toBeCloseTo(0, 12);
    expect(byId.b0).toBe(1);
    expect(byId.b1).toBe(-1);
  });

  it('invariant 10 (property): adding cancelled rollouts with any reward changes no advantage', () => {
    const member = fc.record({ groupId: fc.constantFrom('g0', 'g1', 'g2'), reward: rewardArb });
    fc.assert(
      fc.property(fc.array(member, { maxLength: 20 }), fc.array(member, { maxLength: 10 }), (finished, cancelled) => {
        const clean = groupRollouts(
          finished.map((m) => ({ ...m, cancelled: false })),
          LOO,
        );
        const mixed = groupRollouts(
          [...finished.map((m) => ({ ...m, cancelled: false })), ...cancelled.map((m) => ({ ...m, cancelled: true }))],
          LOO,
        );
        expect(mixed.map((s) => s.advantage)).toEqual(clean.map((s) => s.advantage));
        expect(mixed.every((s) => !s.rollout.cancelled)).toBe(true);
      }),
    );
  });

  it('names the group of a non-finite reward', () => {
    expect(() => groupRollouts([{ groupId: 'task-7', reward: Number.NaN, cancelled: false }], LOO)).toThrow(/task-7/);
  });
});

describe('planMinibatches', () => {
  it('shuffles every epoch and cuts minibatches of M, the last one smaller', () => {
    const plan = planMinibatches(10, 4, 2, new Rng(1), false);
    expect(plan).toHaveLength(2);
    for (const epoch of plan) {
      expect(epoch.map((mb) => mb.length)).toEqual([4, 4, 2]);
      expect(epoch.flat().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
    expect(plan[0].flat()).not.toEqual(plan[1].flat());
    expect(plan[0].flat()).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Same seed, same plan.
    expect(planMinibatches(10, 4, 2, new Rng(1), false)).toEqual(plan);
  });

  it('full batch puts every rollout in one minibatch per epoch', () => {
    const plan = planMinibatches(5, 2, 1, new Rng(3), true);
    expect(plan).toHaveLength(1);
    expect(plan[0]).toHaveLength(1);
    expect([...plan[0][0]].sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it('no rollouts: epochs without minibatches; bad sizes are errors', () => {
    expect(planMinibatches(0, 4, 2, new Rng(0), false)).toEqual([[], []]);
    expect(() => planMinibatches(3, 0, 1, new Rng(0), false)).toThrow(TrainingError);
    expect(() => planMinibatches(3, 2, 0, new Rng(0), false)).toThrow(TrainingError);
  });

  it('the divisor is the configured M, or n for a full batch', () => {
    expect(minibatchDivisor(32, 7, false)).toBe(32);
    expect(minibatchDivisor(32, 7, true)).toBe(7);
  });
});

describe('clipBounds and shouldAbort', () => {
  it('paper: [1 − ε, 1 + ε]; code: [1/(1 + ε), 1 + ε]', () => {
    const paper = clipBounds(0.1, 'paper');
    expect(paper.lo).toBeCloseTo(0.9, 12);
    expect(paper.hi).toBeCloseTo(1.1, 12);
    const code = clipBounds(0.1, 'code');
    expect(code.lo).toBeCloseTo(0.9090909090909, 12); // 1/1.1
    expect(code.hi).toBeCloseTo(1.1, 12);
  });

  it('aborts on a NaN or infinite loss, a NaN KL, or KL above the limit', () => {
    expect(shouldAbort(0.3, 1, 20)).toBe(false);
    expect(shouldAbort(0.3, 20, 20)).toBe(false);
    expect(shouldAbort(0.3, 20.5, 20)).toBe(true);
    expect(shouldAbort(Number.NaN, 0, 20)).toBe(true);
    expect(shouldAbort(Number.POSITIVE_INFINITY, 0, 20)).toBe(true);
    expect(shouldAbort(0.3, Number.NaN, 20)).toBe(true);
  });
});
