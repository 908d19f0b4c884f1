/** Prioritised replay: unroll windows and padding (invariant 9), priorities, importance weights, eviction, refresh. */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../core/errors.js';
import { Rng } from '../../../core/rng.js';
import { PrioritizedReplay, type ReplayEpisodeInput } from '../../../trainer/muzero/replay.js';

const O = 2;
const A = 3;

/** L positions: observation t = [t, t + 0.5], policy row t = one-hot(t mod A) with a little mass elsewhere. */
function episode(L: number, programId = 'p', rootValues?: number[]): ReplayEpisodeInput {
  const policies: number[] = [];
  for (let t = 0; t < L; t++) for (let a = 0; a < A; a++) policies.push(a === t % A ? 2 : 0.5); // rows sum to 3: renormalised
  return {
    programId,
    policyVersion: 1,
    observations: Float32Array.from({ length: L * O }, (_, i) => Math.floor(i / O) + (i % O) * 0.5),
    legalMasks: new Uint8Array(L * A).fill(1),
    actions: Array.from({ length: L }, (_, t) => (t + 2) % A),
    rewards: Array.from({ length: L }, (_, t) => 0.1 * (t + 1)),
    rootValues: rootValues ?? Array.from({ length: L }, (_, t) => 0.5 - 0.1 * t),
    policies,
  };
}

describe('PrioritizedReplay', () => {
  it('samples a position with its K-step window: targets inside the episode, zeros and masks past its end (invariant 9)', () => {
    const replay = new PrioritizedReplay(O, A, { capacity: 10, unrollSteps: 5, tdSteps: 2, discount: 1, priorityExponent: 0 });
    const id = replay.add(episode(3));
    const stored = replay.episode(id)!;
    // z_t = u_{t+1} + u_{t+2} + ν_{t+2}: z0 = 0.1 + 0.2 + 0.3 = 0.6, z1 = 0.2 + 0.3 = 0.5, z2 = 0.3.
    expect(Array.from(stored.valueTargets).map((x) => Number(x.toFixed(6)))).toEqual([0.6, 0.5, 0.3]);
    const batch = replay.sample(30, new Rng(1));
    const B = 30;
    let seenStep1 = false;
    for (let b = 0; b < B; b++) {
      const t = Array.from(stored.slots).indexOf(batch.slots[b]);
      expect(Array.from(batch.observations.subarray(b * O, b * O + O))).toEqual([t, t + 0.5]);
      expect(batch.weights[b]).toBe(1); // α = 0: uniform, all weights equal
      for (let k = 0; k <= 5; k++) {
        const inside = t + k < 3;
        expect(batch.policyMask[k * B + b]).toBe(inside ? 1 : 0);
        expect(batch.valueTargets[k * B + b]).toBeCloseTo(inside ? stored.valueTargets[t + k] : 0, 6);
        if (k >= 1) expect(batch.rewardTargets[k * B + b]).toBeCloseTo(t + k - 1 < 3 ? 0.1 * (t + k) : 0, 6);
        const row = Array.from(batch.policyTargets.subarray((k * B + b) * A, (k * B + b + 1) * A));
        if (inside) {
          expect(row.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 6);
          expect(row[(t + k) % A]).toBeCloseTo(2 / 3, 6);
        } else expect(row).toEqual([0, 0, 0]);
        if (k < 5 && inside) expect(batch.actions[k * B + b]).toBe((t + k + 2) % A);
        if (k < 5) expect(batch.actions[k * B + b]).toBeLessThan(A);
      }
      expect(batch.rewardTargets[b]).toBe(0); // k = 0 has no reward target
      if (t === 1) seenStep1 = true;
    }
    expect(seenStep1).toBe(true);
  });

  it('samples ∝ (|ν − z| + ε)^α and weights by (N·P)^(−β) / max', () => {
    // One position each: |ν − z| = |ν − u| = 0.1, 0.3 (z = u for L = 1).
    const replay = new PrioritizedReplay(O, A, {
      capacity: 10,
      unrollSteps: 1,
      tdSteps: 1,
      priorityExponent: 1,
      importanceExponent: 1,
      priorityEpsilon: 1e-9,
    });
    const a = replay.add({ ...episode(1), rewards: [0.2], rootValues: [0.1] });
    const b = replay.add({ ...episode(1), rewards: [0.4], rootValues: [0.1] });
    const slotA = replay.episode(a)!.slots[0];
    const rng = new Rng(2);
    let countA = 0;
    let total = 0;
    for (let i = 0; i < 400; i++) {
      const batch = replay.sample(10, rng);
      for (let j = 0; j < 10; j++) {
        total += 1;
        if (batch.slots[j] === slotA) {
          countA += 1;
          // P(A) = 0.1 / 0.4, P(B) = 0.3 / 0.4; w ∝ 1/P → w_A / w_B = 3, normalised by the batch max.
          expect(batch.weights[j]).toBeCloseTo(1, 5);
        } else if (batch.slots.includes(slotA)) expect(batch.weights[j]).toBeCloseTo(1 / 3, 5);
      }
    }
    expect(countA / total).toBeGreaterThan(0.22);
    expect(countA / total).toBeLessThan(0.28);
    // After a training step reports new errors the sampling follows them.
    replay.updatePriorities([slotA, replay.episode(b)!.slots[0]], [0.9, 0.1]);
    expect(replay.priorityOf(slotA)).toBeCloseTo(0.9, 6);
  });

  it('evicts whole episodes, oldest first, when full', () => {
    const replay = new PrioritizedReplay(O, A, { capacity: 5 });
    const first = replay.add(episode(3, 'first'));
    const second = replay.add(episode(3, 'second'));
    expect(replay.episodeIds()).toEqual([second]);
    expect(replay.episode(first)).toBeUndefined();
    expect(replay.size).toBe(3);
    const batch = replay.sample(8, new Rng(3));
    for (const slot of batch.slots) expect(Array.from(replay.episode(second)!.slots)).toContain(slot);
  });

  it('refresh replaces π and ν, recomputes z and priorities, and counts the reanalyse', () => {
    const replay = new PrioritizedReplay(O, A, { capacity: 10, tdSteps: 1, priorityExponent: 1, priorityEpsilon: 1e-9 });
    const id = replay.add(episode(2));
    replay.refresh(id, [1, 0, 0, 0, 0, 1], [0.9, 0.8]);
    const stored = replay.episode(id)!;
    // z0 = u1 + ν1 = 0.1 + 0.8, z1 = u2 = 0.2.
    expect(Array.from(stored.valueTargets).map((x) => Number(x.toFixed(6)))).toEqual([0.9, 0.2]);
    expect(replay.priorityOf(stored.slots[1])).toBeCloseTo(0.6, 6);
    expect(Array.from(stored.policies)).toEqual([1, 0, 0, 0, 0, 1]);
    expect(stored.reanalysed).toBe(1);
  });

  it('rejects inconsistent or oversized episodes and bad options', () => {
    const replay = new PrioritizedReplay(O, A, { capacity: 4 });
    expect(() => replay.add({ ...episode(2), rewards: [0.1] })).toThrow(/rewards has 1 values, expected 2/);
    expect(() => replay.add(episode(5))).toThrow(ConfigError);
    expect(() => replay.add({ ...episode(1), policies: [0, 0, 0] })).toThrow(/sums to 0/);
    expect(() => new PrioritizedReplay(O, A, { unrollSteps: 0 })).toThrow(/muzero\.replay\.unrollSteps/);
    expect(() => replay.sample(1, new Rng(1))).toThrow(/empty/);
  });
});
