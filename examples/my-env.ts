/**
 * An example environment plug-in: "reverse the word". Copy this file, change the game, and point a config
 * at it:
 *
 * ```yaml
 * env:
 *   module: ./examples/my-env.ts     # relative to the config file
 *   options: { minLength: 3, maxLength: 5, maxTries: 3 }
 * ```
 *
 * The contract (envs/types.ts) in one paragraph: the module's default export (or a named `env` export)
 * is an `EnvDefinition` — a `name`, a `taskCount(split, options)`, a `create(options)` that returns a
 * fresh `Env` for one episode, and optionally an `optionsSchema` (zod; its defaults apply before `create`
 * sees the options) and `demonstrations(task, options)` for the supervised warm start. An `Env` is
 * `reset(task) → prompt`, then `step(action) → { observation, done }` once per agent turn until `done`,
 * then `score() → { total, parts }`. Text in, text out: the worker does the tokenising. Anything your
 * methods throw counts as an env failure and the episode is retried with a fresh env, so report a bad
 * answer from the agent as an observation, never as an exception.
 *
 * Episode (word "stone", maxTries 3):
 * ```
 * env "Reverse the word: stone\n" · policy "enots" · env "correct\n"           → reward 1
 * env "Reverse the word: stone\n" · policy "enost" · env "wrong, try again\n"
 *                                  · policy "enots" · env "correct\n"           → reward 1, tries 2
 * ```
 */
import { z } from 'zod';
import { Rng, mixSeed } from '../core/rng.js';
import type { Demonstration, Env, EnvDefinition, Reward, StepResult, TaskRef } from '../envs/types.js';

/** Options, with defaults and descriptions (the descriptions are the user's documentation). */
const optionsSchema = z
  .object({
    minLength: z.number().int().min(1).max(32).default(3).describe('Shortest word.'),
    maxLength: z.number().int().min(1).max(32).default(6).describe('Longest word.'),
    maxTries: z.number().int().min(1).max(20).default(3).describe('Answers allowed before the episode ends.'),
  })
  .strict()
  .refine((o) => o.minLength <= o.maxLength, { message: 'minLength must be ≤ maxLength', path: ['minLength'] });

type ReverseOptions = z.output<typeof optionsSchema>;

const SPLITS: ReadonlyMap<string, number> = new Map([
  ['train', 10_000],
  ['eval', 200],
]);

/** The word of a task: letters drawn from an Rng seeded by (split, index, seed), so a task is reproducible. */
export function wordFor(task: TaskRef, options: ReverseOptions): string {
  const rng = new Rng(mixSeed(task.split === 'train' ? 1 : 2, task.index, task.seed));
  const length = options.minLength + rng.int(options.maxLength - options.minLength + 1);
  let word = '';
  for (let i = 0; i < length; i++) word += String.fromCharCode(97 + rng.int(26));
  return word;
}

function reverse(word: string): string {
  return [...word].reverse().join('');
}

/**
 * The reward, kept pure (no I/O, clock or randomness) so it can be replayed from the answers alone:
 * total 1 if one of the first `maxTries` answers (trimmed) is the reversed word; parts `solved` and
 * `tries` (answers counted up to the correct one).
 */
export function reverseReward(answers: readonly string[], word: string, maxTries: number): Reward {
  const counted = answers.slice(0, maxTries);
  const hit = counted.findIndex((answer) => answer.trim() === reverse(word));
  const solved = hit >= 0 ? 1 : 0;
  return { total: solved, parts: { solved, tries: solved ? hit + 1 : counted.length } };
}

/** One episode. State lives on the instance; the worker creates a fresh one per episode. */
class ReverseWordEnv implements Env {
  private word = '';
  private answers: string[] = [];
  private done = false;

  constructor(private readonly options: ReverseOptions) {}

  reset(task: TaskRef): string {
    this.word = wordFor(task, this.options);
    this.answers = [];
    this.done = false;
    return `Reverse the word: ${this.word}\n`;
  }

  step(action: string): StepResult {
    if (this.done) throw new Error('step() after the episode ended');
    this.answers.push(action);
    const correct = action.trim() === reverse(this.word);
    this.done = correct || this.answers.length >= this.options.maxTries;
    const observation = correct ? 'correct\n' : this.done ? 'wrong, no tries left\n' : 'wrong, try again\n';
    return { observation, done: this.done };
  }

  score(): Reward {
    return reverseReward(this.answers, this.word, this.options.maxTries);
  }
}

/** The plug-in: what `env.module` points at. */
const reverseWordEnv: EnvDefinition<ReverseOptions> = {
  name: 'example/reverse-word',
  description: 'Reverse a random lowercase word; "wrong, try again" until maxTries answers.',
  optionsSchema,
  taskCount: (split) => SPLITS.get(split) ?? 0,
  create: (options) => new ReverseWordEnv(options),
  // Scripted demonstrations for the SFT warm start: the correct answer on the first try.
  demonstrations: (task, options): Demonstration => {
    const word = wordFor(task, options);
    return {
      turns: [
        { role: 'env', text: `Reverse the word: ${word}\n` },
        { role: 'policy', text: reverse(word) },
        { role: 'env', text: 'correct\n' },
      ],
    };
  },
};

export default reverseWordEnv;
