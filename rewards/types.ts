/**
 * Reward-function glossary. A reward function is pure: same history and task → same reward, with no I/O,
 * clock or randomness, so it can be replayed from a stored transcript and unit-tested from its doc example.
 */

/** A reward with named parts; `total` is what the algorithm optimises (LOOP: in [0, 1]). */
export interface Reward {
  readonly total: number;
  readonly parts: Readonly<Record<string, number>>;
  /**
   * Optional reward of each agent turn (length = number of turns), for objectives whose training sample is
   * one turn rather than the whole episode (Mem-α: R_{j,t} per chunk). `total` stays the episode's score.
   */
  readonly turnRewards?: readonly number[];
}

/** A supervised demonstration: alternating observations and policy turns, starting with the prompt. */
export interface Demonstration {
  readonly turns: ReadonlyArray<{ readonly role: 'env' | 'policy'; readonly text: string }>;
}

/**
 * An episode as text, in order: the prompt (`env`), then alternating `policy` turns and `env` replies.
 * Same shape as a demonstration's turns, so scripted demonstrations can be scored like real episodes.
 */
export type Transcript = Demonstration['turns'];

/** A pure reward: `(history, task) => { total, parts }`. */
export type RewardFn<History, Task> = (history: History, task: Task) => Reward;
