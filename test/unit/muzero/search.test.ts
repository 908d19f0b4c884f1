/**
 * Search: a tiny hand-made game with a known best action (both pUCT and Gumbel, learned and
 * true-simulator dynamics), a non-greedy decision of the malloc game, invariant 8 (visits sum to n,
 * normalised Q in [0, 1]), invariant 2 for policy targets, batching, and the sampling helpers.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../core/rng.js';
import { MallocGame } from '../../../envs/malloc/game.js';
import { loadProgramFile } from '../../../envs/malloc/loaders.js';
import type { InferenceBatch, SearchModel } from '../../../models/muzero/networks.js';
import {
  resolveSearchConfig,
  runSearch,
  sampleDirichlet,
  sampleGamma,
  sequentialHalvingSchedule,
  type SearchGame,
  type SearchRoot,
} from '../../../models/muzero/search.js';

/**
 * A two-step game with 3 actions. Root: a0 → +1 (then nothing more to gain), a1 → 0 but then a1 → +3;
 * a2 is illegal at the root. The best first action is a1 (return 3), although a0 pays more at once.
 */
const TRANSITIONS: Record<number, Record<number, { to: number; reward: number }>> = {
  0: { 0: { to: 1, reward: 1 }, 1: { to: 2, reward: 0 } },
  1: { 0: { to: 3, reward: 0 }, 1: { to: 3, reward: 0 }, 2: { to: 3, reward: 0 } },
  2: { 0: { to: 3, reward: 0 }, 1: { to: 3, reward: 3 }, 2: { to: 3, reward: 0 } },
};
const STATES = 4; // 3 is terminal

class TreeGame implements SearchGame {
  constructor(public state = 0) {}
  get done(): boolean {
    return TRANSITIONS[this.state] === undefined;
  }
  clone(): TreeGame {
    return new TreeGame(this.state);
  }
  step(action: number): number {
    const t = TRANSITIONS[this.state]?.[action];
    if (!t) throw new RangeError(`illegal action ${action} in state ${this.state}`);
    this.state = t.to;
    return t.reward;
  }
  legalMask(): Uint8Array {
    return Uint8Array.from([0, 1, 2], (a) => (TRANSITIONS[this.state]?.[a] ? 1 : 0));
  }
  observe(out: Float32Array, at = 0): void {
    out.fill(0, at, at + STATES);
    out[at + this.state] = 1;
  }
}

/** Zero logits and zero values everywhere: search must find the answer from rewards alone. */
class UniformModel implements SearchModel {
  readonly numActions = 3;
  readonly stateSize = STATES + 1;
  initialCalls: number[] = [];
  recurrentCalls: number[] = [];
  async initialInference(observations: Float32Array, batch: number): Promise<InferenceBatch> {
    this.initialCalls.push(batch);
    const states = new Float32Array(batch * this.stateSize);
    for (let b = 0; b < batch; b++) states.set(observations.subarray(b * STATES, (b + 1) * STATES), b * this.stateSize);
    return { states, policyLogits: new Float32Array(batch * 3), values: new Float32Array(batch), rewards: new Float32Array(batch) };
  }
  /** Exact tabular dynamics of TreeGame on one-hot states; illegal actions lead to an absorbing state. */
  async recurrentInference(states: Float32Array, actions: Int32Array, batch: number): Promise<InferenceBatch> {
    this.recurrentCalls.push(batch);
    const D = this.stateSize;
    const next = new Float32Array(batch * D);
    const rewards = new Float32Array(batch);
    for (let b = 0; b < batch; b++) {
      const id = states.subarray(b * D, (b + 1) * D).indexOf(1);
      const t = TRANSITIONS[id]?.[actions[b]];
      next[b * D + (t ? t.to : STATES)] = 1;
      rewards[b] = t ? t.reward : 0;
    }
    return { states: next, policyLogits: new Float32Array(batch * 3), values: new Float32Array(batch), rewards };
  }
}

function treeRoot(): SearchRoot {
  const game = new TreeGame();
  const observation = new Float32Array(STATES);
  game.observe(observation);
  return { observation, legalMask: game.legalMask(), game };
}

/**
 * pUCT needs more simulations than Gumbel here: a0's immediate +1 is the best Q seen until a1's subtree
 * has been visited a few times (with uniform priors and zero values it takes ~30 simulations, more with root noise).
 */
const arms = [
  { algorithm: 'puct', dynamics: 'learned', rootExplorationFraction: 0, temperature: 0, simulations: 64 },
  { algorithm: 'puct', dynamics: 'simulator', rootExplorationFraction: 0.25, temperature: 0, simulations: 128 },
  { algorithm: 'gumbel', dynamics: 'learned', gumbelScale: 0, simulations: 16 },
  { algorithm: 'gumbel', dynamics: 'simulator', gumbelScale: 1, simulations: 16 },
] as const;

describe('search on a tiny game with a known best action', () => {
  for (const arm of arms) {
    it(`${arm.algorithm}, ${arm.dynamics} dynamics: picks a1 (return 3) over the greedy a0 (+1 now), never the illegal a2`, async () => {
      for (const seed of [1, 2, 3]) {
        const [out] = await runSearch(new UniformModel(), [treeRoot()], resolveSearchConfig(arm), new Rng(seed));
        expect(out.action).toBe(1);
        expect(out.visitCounts[2]).toBe(0);
        expect(out.policyTarget[2]).toBe(0);
        expect(out.policyTarget[1]).toBeGreaterThan(out.policyTarget[0]);
        expect(out.visitCounts[0] + out.visitCounts[1]).toBe(arm.simulations);
        // ν: the root's own estimate (0) averaged with backed-up returns of at most 3.
        expect(out.rootValue).toBeGreaterThan(1);
        expect(out.rootValue).toBeLessThanOrEqual(3);
      }
    });
  }

  it('both rules find the non-greedy SLOW in the malloc example (PLACE b pays 6/24 now, SLOW then c pays 9/24)', async () => {
    const program = loadProgramFile('examples/data/malloc-program.json').compiled;
    const game = new MallocGame(program, { candidates: 2 });
    game.step(0); // a at offset 0; now b: PLACE (action 0) or SLOW (action 2)
    const observation = new Float32Array(game.observationSize);
    game.observe(observation);
    const uniform: SearchModel = {
      numActions: 3,
      stateSize: 1,
      initialInference: async (_o, batch) => ({
        states: new Float32Array(batch),
        policyLogits: new Float32Array(batch * 3),
        values: new Float32Array(batch),
        rewards: new Float32Array(batch),
      }),
      recurrentInference: async () => {
        throw new Error('the simulator arm never calls the dynamics');
      },
    };
    for (const [algorithm, simulations] of [
      ['puct', 64],
      ['gumbel', 12],
    ] as const) {
      const config = resolveSearchConfig({
        algorithm,
        dynamics: 'simulator',
        simulations,
        rootExplorationFraction: 0,
        temperature: 0,
        gumbelScale: 0,
      });
      const [out] = await runSearch(uniform, [{ observation, legalMask: game.legalMask().slice(), game }], config, new Rng(4));
      expect(out.action).toBe(2);
      expect(out.rootValue).toBeGreaterThan(0);
    }
    expect(game.stepIndex).toBe(1); // search never steps the root game itself
  });
});

/** A deterministic pseudo-random stand-in network (no tensors): logits, values, rewards and states hash their inputs. */
class HashModel implements SearchModel {
  readonly stateSize = 3;
  constructor(readonly numActions: number) {}
  private static noise(x: number): number {
    const s = Math.sin(x * 12.9898 + 78.233) * 43758.5453;
    return s - Math.floor(s);
  }
  private fill(seeds: Float32Array, batch: number, reward: boolean): InferenceBatch {
    const A = this.numActions;
    const D = this.stateSize;
    const states = new Float32Array(batch * D);
    const policyLogits = new Float32Array(batch * A);
    const values = new Float32Array(batch);
    const rewards = new Float32Array(batch);
    for (let b = 0; b < batch; b++) {
      const seed = seeds[b];
      for (let d = 0; d < D; d++) states[b * D + d] = HashModel.noise(seed + d);
      for (let a = 0; a < A; a++) policyLogits[b * A + a] = 3 * HashModel.noise(seed * 7 + a) - 1.5;
      values[b] = HashModel.noise(seed * 3);
      if (reward) rewards[b] = 0.3 * HashModel.noise(seed * 5);
    }
    return { states, policyLogits, values, rewards };
  }
  async initialInference(observations: Float32Array, batch: number): Promise<InferenceBatch> {
    const O = observations.length / batch;
    return this.fill(
      Float32Array.from({ length: batch }, (_, b) => observations.subarray(b * O, (b + 1) * O).reduce((s, x, i) => s + x * (i + 1), 0)),
      batch,
      false,
    );
  }
  async recurrentInference(states: Float32Array, actions: Int32Array, batch: number): Promise<InferenceBatch> {
    return this.fill(
      Float32Array.from({ length: batch }, (_, b) => states[b * 3] * 101 + states[b * 3 + 1] * 7 + actions[b] * 13),
      batch,
      true,
    );
  }
}

describe('search invariants (property tests)', () => {
  it('root visits sum to n; π sums to 1 with no mass on illegal actions; normalised Q ∈ [0, 1] (invariants 2, 8)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 9 }),
        fc.integer({ min: 1, max: 40 }),
        fc.constantFrom('puct', 'gumbel'),
        fc.array(fc.array(fc.boolean(), { minLength: 9, maxLength: 9 }), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 1, max: 6 }),
        fc.nat(),
        async (A, n, algorithm, masks, m, seed) => {
          const roots = masks.map((bits, i) => {
            const legalMask = Uint8Array.from({ length: A }, (_, a) => (bits[a] || a === A - 1 ? 1 : 0));
            return { observation: Float32Array.from([i + 1, seed % 97, 0.5]), legalMask };
          });
          const config = resolveSearchConfig({ algorithm, simulations: n, maxConsideredActions: m, temperature: 1 });
          const outputs = await runSearch(new HashModel(A), roots, config, new Rng(seed));
          outputs.forEach((out, i) => {
            const legal = roots[i].legalMask;
            expect(out.visitCounts.reduce((a, b) => a + b, 0)).toBe(n);
            expect(out.policyTarget.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
            for (let a = 0; a < A; a++) {
              if (!legal[a]) {
                expect(out.policyTarget[a]).toBe(0);
                expect(out.visitCounts[a]).toBe(0);
              }
              expect(out.normalizedQ[a]).toBeGreaterThanOrEqual(0);
              expect(out.normalizedQ[a]).toBeLessThanOrEqual(1);
            }
            expect(legal[out.action]).toBe(1);
          });
        },
      ),
      { numRuns: 150 },
    );
  });

  it('is reproducible for a seed', async () => {
    const roots = [treeRoot(), treeRoot()];
    for (const algorithm of ['puct', 'gumbel'] as const) {
      const config = resolveSearchConfig({ algorithm, simulations: 9 });
      const a = await runSearch(new HashModel(3), roots, config, new Rng(8));
      const b = await runSearch(new HashModel(3), roots, config, new Rng(8));
      expect(b).toEqual(a);
    }
  });
});

describe('batched network calls', () => {
  it('one initial call for all roots, then one recurrent call per simulation step for all games', async () => {
    const model = new UniformModel();
    await runSearch(model, [treeRoot(), treeRoot(), treeRoot(), treeRoot()], resolveSearchConfig({ simulations: 3 }), new Rng(1));
    expect(model.initialCalls).toEqual([4]);
    expect(model.recurrentCalls).toEqual([4, 4, 4]);
  });

  it('the simulator arm scores only non-terminal children and skips the network when all leaves are terminal', async () => {
    const model = new UniformModel();
    const game = new TreeGame(2); // one step from the end: every child is terminal
    const observation = new Float32Array(STATES);
    game.observe(observation);
    const [out] = await runSearch(
      model,
      [{ observation, legalMask: game.legalMask(), game }],
      resolveSearchConfig({ algorithm: 'puct', dynamics: 'simulator', simulations: 7, rootExplorationFraction: 0, temperature: 0 }),
      new Rng(1),
    );
    expect(model.initialCalls).toEqual([1]);
    expect(model.recurrentCalls).toEqual([]);
    expect(out.action).toBe(1);
    expect(out.visitCounts.reduce((a, b) => a + b, 0)).toBe(7);
  });
});

describe('sequential halving schedule', () => {
  it('gives every remaining action equal visits per phase, halving the set', () => {
    expect(Array.from(sequentialHalvingSchedule(4, 8))).toEqual([0, 0, 0, 0, 1, 1, 2, 2]);
    expect(Array.from(sequentialHalvingSchedule(3, 10))).toEqual([0, 0, 0, 1, 1, 2, 2, 3, 3, 4]);
    expect(Array.from(sequentialHalvingSchedule(16, 16))).toEqual(new Array(16).fill(0));
    expect(Array.from(sequentialHalvingSchedule(1, 4))).toEqual([0, 1, 2, 3]);
    // m = 8, n = 32: phases of 3; 8 × 1, then 4 × 2, then 2 × 5, then 2 × 5 (truncated).
    expect(Array.from(sequentialHalvingSchedule(8, 32))).toEqual([
      ...new Array(8).fill(0),
      1,
      1,
      1,
      1,
      2,
      2,
      2,
      2,
      3,
      3,
      4,
      4,
      5,
      5,
      6,
      6,
      7,
      7,
      8,
      8,
      9,
      9,
      10,
      10,
    ]);
  });
});

describe('noise samplers', () => {
  it('Dirichlet samples lie on the simplex; Gamma(k) has mean k', () => {
    const rng = new Rng(3);
    for (const alpha of [0.03, 0.3, 3]) {
      const sample = sampleDirichlet(rng, alpha, 7);
      expect(sample.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      for (const x of sample) expect(x).toBeGreaterThanOrEqual(0);
    }
    for (const shape of [0.5, 2]) {
      let sum = 0;
      for (let i = 0; i < 20_000; i++) sum += sampleGamma(rng, shape);
      expect(sum / 20_000).toBeGreaterThan(shape * 0.95);
      expect(sum / 20_000).toBeLessThan(shape * 1.05);
    }
  });
});
