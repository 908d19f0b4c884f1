/**
 * Token-level trajectories: what workers return and the learner trains on.
 * Shapes: every per-token array of a segment has the segment's length T (tokens, not characters).
 * Records are plain JSON (they cross the queue) and readonly.
 */
import type { Reward } from '../envs/types.js';

/** One context the policy saw: a multi-turn LOOP episode is one segment whose mask alternates. */
export interface Segment {
  /** Exact token ids, prompt and environment tokens included, in order: [T]. */
  readonly tokens: readonly number[];
  /** 1 where the policy generated the token, 0 for prompt / environment tokens: [T]. */
  readonly isOutput: readonly (0 | 1)[];
  /** Sampler log-probability of each output token (0 where isOutput = 0): [T]. */
  readonly logProbs: readonly number[];
  /** Agent turn index of each token (−1 for tokens before the first turn): [T]. For per-turn ratios. */
  readonly turn: readonly number[];
}

/** Why an episode ended. */
export type FinishReason = 'done' | 'max_turns' | 'max_context' | 'cancelled';

/** One rollout of one task. */
export interface Trajectory {
  /** Globally unique and deterministic: `${trainingJobId}/${iteration}/${group}/${k}`. Ingestion dedups on it. */
  readonly rolloutId: string;
  readonly groupId: string;
  /** Policy version that generated every output token. */
  readonly policyVersion: number;
  readonly segments: readonly Segment[];
  readonly reward: Reward;
  readonly finishReason: FinishReason;
  /** Number of agent turns taken. */
  readonly turns: number;
  /** Episode retries spent before this one succeeded (env failures). */
  readonly retries: number;
  /** Wall time of the episode in ms (generation + env). */
  readonly wallMs: number;
}
