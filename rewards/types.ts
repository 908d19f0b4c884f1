/**
 * Reward-function glossary. A reward function is pure: same history and task → same reward, with no I/O,
 * clock or randomness, so it can be replayed from a stored transcript and unit-tested from its doc example.
 */
import type { Demonstration, Reward } from '../envs/types.js';

/**
 * An episode as text, in order: the prompt (`env`), then alternating `policy` turns and `env` replies.
 * Same shape as a demonstration's turns, so scripted demonstrations can be scored like real episodes.
 */
export type Transcript = Demonstration['turns'];

/** A pure reward: `(history, task) => { total, parts }`. */
export type RewardFn<History, Task> = (history: History, task: Task) => Reward;
