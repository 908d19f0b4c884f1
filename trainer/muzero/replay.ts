/**
 * Prioritised replay owned by the learner (spec "Replay buffer"; Schaul et al. 2016 as used by MuZero):
 * positions are sampled with P(i) = p_i^α / Σ_j p_j^α, p_i = |ν_i − z_i| + ε at insertion and
 * |v̂_i − z_i| + ε after each training step, and weighted by w_i = (N·P(i))^(−β) / max_batch w. A
 * sampled position t comes with its unroll window t..t+K: actions a_t..a_{t+K−1} (uniformly random
 * past the end, whose targets are absorbing), policy targets π (masked past the end), value targets z
 * (0 past the end), reward targets u (0 past the end).
 *
 * Capacity counts positions; whole episodes are evicted oldest first.
 */
import { ConfigError } from '../../core/errors.js';
import type { Rng } from '../../core/rng.js';
import { ReplayOptionsSchema, type ReplayOptions } from '../../configs/muzero.js';
import { nStepValueTargets } from './targets.js';

/** Declared in configs/muzero.ts, with the run config that embeds it. */
export { ReplayOptionsSchema, type ReplayOptions };

/** What the learner inserts: one self-play episode with its observations rebuilt by replay. */
export interface ReplayEpisodeInput {
  readonly programId: string;
  readonly policyVersion: number;
  /** [L · O]. */
  readonly observations: Float32Array;
  /** [L · A], 1 = legal. */
  readonly legalMasks: Uint8Array;
  /** [L] a_t. */
  readonly actions: ArrayLike<number>;
  /** [L] u_{t+1}. */
  readonly rewards: ArrayLike<number>;
  /** [L] ν_t, the search values. */
  readonly rootValues: ArrayLike<number>;
  /** [L · A] π_t (rows are renormalised to sum 1 on insertion). */
  readonly policies: ArrayLike<number>;
}

/** An episode as stored (read-only outside this module). */
export interface StoredEpisode {
  readonly id: number;
  readonly programId: string;
  readonly policyVersion: number;
  readonly length: number;
  readonly observations: Float32Array;
  readonly legalMasks: Uint8Array;
  readonly actions: Int32Array;
  readonly rewards: Float32Array;
  readonly rootValues: Float32Array;
  readonly policies: Float32Array;
  readonly valueTargets: Float32Array;
  /** Replay slot of each position. */
  readonly slots: Int32Array;
  /** How many times reanalyse refreshed it. */
  readonly reanalysed: number;
}

/**
 * A sampled batch, laid out step-major so that step k of every sample is contiguous:
 * index (k·B + b) for per-step scalars, ((k·B + b)·A + a) for per-step action vectors.
 */
export interface UnrollBatch {
  readonly batchSize: number;
  readonly unrollSteps: number;
  readonly observationSize: number;
  readonly numActions: number;
  /** [B · O] o_t. */
  readonly observations: Float32Array;
  /** [K · B] a_{t+k}. */
  readonly actions: Int32Array;
  /** [(K+1) · B] z_{t+k} (0 past the end). */
  readonly valueTargets: Float32Array;
  /** [(K+1) · B] u_{t+k} for k ≥ 1 (entry k = 0 is unused, 0). */
  readonly rewardTargets: Float32Array;
  /** [(K+1) · B · A] π_{t+k} (zeros past the end). */
  readonly policyTargets: Float32Array;
  /** [(K+1) · B] 1 where t+k is inside the episode (policy loss applies). */
  readonly policyMask: Float32Array;
  /** [B] importance weights, max 1. */
  readonly weights: Float32Array;
  /** [B] replay slots (for updatePriorities). */
  readonly slots: Int32Array;
}

/** Sum tree over slot priorities (leaves recomputed bottom-up on every set, so no drift). */
class SumTree {
  private readonly leaves: number;
  private readonly tree: Float64Array;

  constructor(capacity: number) {
    let leaves = 1;
    while (leaves < capacity) leaves *= 2;
    this.leaves = leaves;
    this.tree = new Float64Array(2 * leaves);
  }

  get total(): number {
    return this.tree[1];
  }

  get(slot: number): number {
    return this.tree[this.leaves + slot];
  }

  set(slot: number, value: number): void {
    let i = this.leaves + slot;
    this.tree[i] = value;
    for (i >>= 1; i >= 1; i >>= 1) this.tree[i] = this.tree[2 * i] + this.tree[2 * i + 1];
  }

  /** The slot where the prefix sum crosses u ∈ [0, total); never a zero-priority slot. */
  find(u: number): number {
    let i = 1;
    while (i < this.leaves) {
      const left = 2 * i;
      if ((u < this.tree[left] && this.tree[left] > 0) || this.tree[left + 1] === 0) i = left;
      else {
        u -= this.tree[left];
        i = left + 1;
      }
    }
    return i - this.leaves;
  }
}

/** Prioritised replay of self-play episodes. */
export class PrioritizedReplay {
  readonly options: ReplayOptions;
  private readonly tree: SumTree;
  private readonly slotEpisode: Int32Array;
  private readonly slotStep: Int32Array;
  private readonly freeSlots: number[] = [];
  private readonly episodes = new Map<number, StoredEpisode & { reanalysed: number }>();
  private nextId = 0;
  private positions = 0;

  constructor(
    readonly observationSize: number,
    readonly numActions: number,
    options: Partial<ReplayOptions> = {},
  ) {
    const parsed = ReplayOptionsSchema.safeParse(options);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ConfigError(`muzero.replay.${issue.path.join('.')}: ${issue.message}`, { context: { path: issue.path } });
    }
    this.options = Object.freeze(parsed.data);
    this.tree = new SumTree(this.options.capacity);
    this.slotEpisode = new Int32Array(this.options.capacity).fill(-1);
    this.slotStep = new Int32Array(this.options.capacity);
    for (let s = this.options.capacity - 1; s >= 0; s--) this.freeSlots.push(s);
  }

  /** Stored positions. */
  get size(): number {
    return this.positions;
  }

  /** Stored episodes. */
  get episodeCount(): number {
    return this.episodes.size;
  }

  /** Ids of the stored episodes, oldest first. */
  episodeIds(): number[] {
    return [...this.episodes.keys()];
  }

  /** A stored episode (do not modify it), or undefined once evicted. */
  episode(id: number): StoredEpisode | undefined {
    return this.episodes.get(id);
  }

  /** Current priority of a slot (the sum-tree leaf, p^α). */
  priorityOf(slot: number): number {
    return this.tree.get(slot);
  }

  /** Insert an episode (evicting the oldest ones if needed); returns its id. */
  add(input: ReplayEpisodeInput): number {
    const L = input.actions.length;
    const { observationSize: O, numActions: A } = this;
    if (L === 0) throw new RangeError('replay: an episode needs at least one position');
    if (L > this.options.capacity)
      throw new ConfigError(
        `replay: an episode of ${L} positions exceeds muzero.replay.capacity (${this.options.capacity}); raise the capacity`,
      );
    const lengths: Array<[string, number, number]> = [
      ['observations', input.observations.length, L * O],
      ['legalMasks', input.legalMasks.length, L * A],
      ['rewards', input.rewards.length, L],
      ['rootValues', input.rootValues.length, L],
      ['policies', input.policies.length, L * A],
    ];
    for (const [name, actual, expected] of lengths)
      if (actual !== expected) throw new RangeError(`replay: ${name} has ${actual} values, expected ${expected}`);
    while (this.freeSlots.length < L) this.evictOldest();

    const policies = Float32Array.from(input.policies);
    for (let t = 0; t < L; t++) {
      let sum = 0;
      for (let a = 0; a < A; a++) sum += policies[t * A + a];
      if (!(sum > 0)) throw new RangeError(`replay: policy target at step ${t} sums to ${sum}`);
      for (let a = 0; a < A; a++) policies[t * A + a] /= sum;
    }
    const rewards = Float32Array.from(input.rewards);
    const rootValues = Float32Array.from(input.rootValues);
    const id = this.nextId++;
    const episode = {
      id,
      programId: input.programId,
      policyVersion: input.policyVersion,
      length: L,
      observations: input.observations.slice(),
      legalMasks: input.legalMasks.slice(),
      actions: Int32Array.from(input.actions),
      rewards,
      rootValues,
      policies,
      valueTargets: nStepValueTargets(rewards, rootValues, this.options.tdSteps, this.options.discount),
      slots: new Int32Array(L),
      reanalysed: 0,
    };
    for (let t = 0; t < L; t++) {
      const slot = this.freeSlots.pop() as number;
      episode.slots[t] = slot;
      this.slotEpisode[slot] = id;
      this.slotStep[slot] = t;
      this.tree.set(slot, this.priority(Math.abs(rootValues[t] - episode.valueTargets[t])));
    }
    this.episodes.set(id, episode);
    this.positions += L;
    return id;
  }

  /** Sample `batchSize` positions (stratified over the priority mass) with their unroll windows. */
  sample(batchSize: number, rng: Rng): UnrollBatch {
    if (this.positions === 0) throw new RangeError('replay: cannot sample from an empty buffer');
    const { unrollSteps: K } = this.options;
    const { observationSize: O, numActions: A } = this;
    const B = batchSize;
    const batch: UnrollBatch = {
      batchSize: B,
      unrollSteps: K,
      observationSize: O,
      numActions: A,
      observations: new Float32Array(B * O),
      actions: new Int32Array(K * B),
      valueTargets: new Float32Array((K + 1) * B),
      rewardTargets: new Float32Array((K + 1) * B),
      policyTargets: new Float32Array((K + 1) * B * A),
      policyMask: new Float32Array((K + 1) * B),
      weights: new Float32Array(B),
      slots: new Int32Array(B),
    };
    const total = this.tree.total;
    const segment = total / B;
    let maxWeight = 0;
    for (let b = 0; b < B; b++) {
      const u = Math.min((b + rng.next()) * segment, total * (1 - 1e-12));
      const slot = this.tree.find(u);
      const episode = this.episodes.get(this.slotEpisode[slot]) as StoredEpisode;
      const t = this.slotStep[slot];
      batch.slots[b] = slot;
      const probability = this.tree.get(slot) / total;
      const weight = (this.positions * probability) ** -this.options.importanceExponent;
      batch.weights[b] = weight;
      if (weight > maxWeight) maxWeight = weight;
      batch.observations.set(episode.observations.subarray(t * O, (t + 1) * O), b * O);
      for (let k = 0; k <= K; k++) {
        const step = t + k;
        const inside = step < episode.length;
        if (k < K) batch.actions[k * B + b] = inside ? episode.actions[step] : rng.int(A);
        batch.valueTargets[k * B + b] = inside ? episode.valueTargets[step] : 0;
        if (k >= 1) batch.rewardTargets[k * B + b] = step - 1 < episode.length ? episode.rewards[step - 1] : 0;
        if (inside) {
          batch.policyMask[k * B + b] = 1;
          batch.policyTargets.set(episode.policies.subarray(step * A, (step + 1) * A), (k * B + b) * A);
        }
      }
    }
    for (let b = 0; b < B; b++) batch.weights[b] /= maxWeight;
    return batch;
  }

  /** New priorities p = |v̂ − z| (+ ε, ^α) for sampled slots; slots evicted since sampling are skipped. */
  updatePriorities(slots: ArrayLike<number>, errors: ArrayLike<number>): void {
    for (let i = 0; i < slots.length; i++) {
      if (this.slotEpisode[slots[i]] < 0) continue;
      this.tree.set(slots[i], this.priority(errors[i]));
    }
  }

  /**
   * Replace an episode's policy targets and search values (reanalyse), recompute its value targets and
   * reset its priorities to |ν − z|.
   */
  refresh(id: number, policies: ArrayLike<number>, rootValues: ArrayLike<number>): void {
    const episode = this.episodes.get(id);
    if (episode === undefined) return; // evicted meanwhile
    const { length: L } = episode;
    const A = this.numActions;
    if (policies.length !== L * A || rootValues.length !== L)
      throw new RangeError(`replay.refresh: expected ${L * A} policy values and ${L} root values`);
    episode.policies.set(policies);
    episode.rootValues.set(rootValues);
    episode.valueTargets.set(nStepValueTargets(episode.rewards, episode.rootValues, this.options.tdSteps, this.options.discount));
    for (let t = 0; t < L; t++) this.tree.set(episode.slots[t], this.priority(Math.abs(episode.rootValues[t] - episode.valueTargets[t])));
    episode.reanalysed += 1;
  }

  private priority(error: number): number {
    return (Math.abs(error) + this.options.priorityEpsilon) ** this.options.priorityExponent;
  }

  private evictOldest(): void {
    const [id, episode] = this.episodes.entries().next().value as [number, StoredEpisode];
    for (const slot of episode.slots) {
      this.tree.set(slot, 0);
      this.slotEpisode[slot] = -1;
      this.freeSlots.push(slot);
    }
    this.positions -= episode.length;
    this.episodes.delete(id);
  }
}
