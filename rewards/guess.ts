/**
 * Reward of the `toy/guess` environment ("guess my number"). The rules that decide what counts as a
 * guess live here, next to the reward, so the env's replies and the score can never disagree.
 */
import type { Reward } from './types.js';
import type { Transcript } from './types.js';

/** What the reward needs to know about one guessing task. */
export interface GuessTask {
  /** The hidden number, in [1, maxNumber]. */
  readonly target: number;
  readonly maxNumber: number;
  /** Guesses allowed; policy turns after the cap are ignored. */
  readonly maxGuesses: number;
}

/**
 * The number a policy turn names, or `undefined` when the turn is not a valid guess. Valid: only decimal
 * digits, optionally surrounded by whitespace, naming a whole number in [1, maxNumber]. `"+3"`, `"3.0"`,
 * `"three"` and `"3 4"` are invalid.
 */
export function parseGuess(text: string, maxNumber: number): number | undefined {
  const match = /^\s*(\d+)\s*$/.exec(text);
  if (match === null) return undefined;
  const value = Number(match[1]);
  return Number.isSafeInteger(value) && value >= 1 && value <= maxNumber ? value : undefined;
}

/**
 * Score a guessing episode from its transcript. Every policy turn is one guess (an invalid one included),
 * counted up to the first correct guess or `maxGuesses`, whichever comes first.
 *
 * - `total`: 1 if the target was named within the cap, else 0.
 * - `parts.solved`: same as `total`.
 * - `parts.guesses`: guesses counted (≤ maxGuesses).
 * - `parts.invalid`: counted guesses that were not a whole number in range.
 *
 * Worked example (target 10, maxNumber 16, maxGuesses 5):
 * ```
 * env     "Guess my number from 1 to 16.\n"
 * policy  "8"      → env "higher\n"
 * policy  "12"     → env "lower\n"
 * policy  "ten"    → env "invalid guess: write a whole number from 1 to 16\n"
 * policy  " 10\n"  → env "correct\n"
 * ```
 * Four policy turns, the fourth names 10, one of them is invalid:
 * `{ total: 1, parts: { solved: 1, guesses: 4, invalid: 1 } }`.
 */
export function guessReward(history: Transcript, task: GuessTask): Reward {
  let guesses = 0;
  let invalid = 0;
  let solved = 0;
  for (const turn of history) {
    if (turn.role !== 'policy') continue;
    if (solved === 1 || guesses >= task.maxGuesses) break;
    guesses += 1;
    const value = parseGuess(turn.text, task.maxNumber);
    if (value === undefined) invalid += 1;
    else if (value === task.target) solved = 1;
  }
  return { total: solved, parts: { solved, guesses, invalid } };
}
