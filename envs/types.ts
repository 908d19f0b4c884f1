/**
 * The environment contract. Units: text in, text out; the rollout worker owns tokenisation.
 * An episode is: `reset(task)` → first observation, then alternating policy action / `step(action)`
 * until `done`, then `score()` once. Environments are stateful and used by one episode at a time;
 * the worker creates a fresh one per episode (and per retry).
 */
import type { z } from 'zod';
import type { Demonstration, Reward } from '../rewards/types.js';

/** Rewards and demonstrations are defined with the reward functions (rewards/types.ts). */
export type { Demonstration, Reward };

/** What `step` returns: the environment's reply (appended to the context as non-policy tokens). */
export interface StepResult {
  readonly observation: string;
  /** True when the episode is over (task completed, failed irrecoverably, or the env's own cap). */
  readonly done: boolean;
}

/** One task, identified by split and index; `seed` makes its content reproducible. */
export interface TaskRef {
  readonly split: string;
  readonly index: number;
  readonly seed: number;
}

/** A live episode. All methods may be async; a thrown error is an env failure (the worker retries). */
export interface Env {
  /** Start the episode for `task`; returns the first observation (the task prompt). */
  reset(task: TaskRef): Promise<string> | string;
  /** Apply one policy action (the decoded text of one turn) and return the reply. */
  step(action: string): Promise<StepResult> | StepResult;
  /** Score the finished (or truncated) episode. Pure with respect to the episode's history. */
  score(): Promise<Reward> | Reward;
  /** Release resources (connections, files). */
  close?(): Promise<void> | void;
}

/**
 * What an environment module exports (built-in or a user's plug-in). `options` are validated with
 * `optionsSchema` before `create` is called.
 */
export interface EnvDefinition<Options = unknown> {
  /** Short name used in logs and metrics. */
  readonly name: string;
  /** One line describing the environment. */
  readonly description?: string;
  /** zod schema for `env.options`; defaults apply. */
  readonly optionsSchema?: z.ZodType<Options>;
  /** Number of tasks in a split (`train`, `eval`, …); splits an env does not have return 0. */
  taskCount(split: string, options: Options): number;
  /** A fresh environment instance for one episode. */
  create(options: Options): Env | Promise<Env>;
  /** Optional scripted demonstrations for the SFT warm start. */
  demonstrations?(task: TaskRef, options: Options): Demonstration;
  /**
   * Optional evaluation summary over finished episodes, beyond mean reward and success rate (e.g.
   * toolworld's task and scenario goal completion). Keys become metric names; values should be in [0, 1]
   * or documented units.
   */
  summarize?(results: ReadonlyArray<EpisodeResult>, options: Options): Record<string, number>;
  /**
   * Optional scores of non-learned reference methods on a task (e.g. Mem-α's long-context and RAG
   * readers), evaluated next to the policy by `horizon eval`. Keys are the baselines' names.
   */
  baselines?(task: TaskRef, options: Options): Promise<Record<string, Reward>> | Record<string, Reward>;
}

/** One evaluated episode: which task and how it scored. */
export interface EpisodeResult {
  readonly task: TaskRef;
  readonly reward: Reward;
}
