/**
 * `toy/guess` — "guess my number". The env hides n ∈ [1, maxNumber]; each agent turn is one guess and the
 * env replies `higher`, `lower` or `correct`. Episodes are a few dozen bytes long, so a tiny byte-level
 * transformer can learn it on a CPU: SFT on the noisy binary-search demonstrations gets a decent policy,
 * RL then learns to prefer the midpoint (binary search always wins when maxGuesses ≥ ⌈log2(maxNumber+1)⌉,
 * e.g. 5 guesses for 16 numbers).
 *
 * Transcript of one episode (target 10, defaults):
 * ```
 * env "Guess my number from 1 to 16.\n" · policy "8" · env "higher\n" · policy "12" · env "lower\n"
 * policy "10" · env "correct\n"   (done; reward 1)
 * ```
 */
import { z } from 'zod';
import { ConfigError, EnvError } from '../../core/errors.js';
import { Rng, mixSeed } from '../../core/rng.js';
import { guessReward, parseGuess, type GuessTask } from '../../rewards/guess.js';
import type { Transcript } from '../../rewards/types.js';
import type { Demonstration, Env, EnvDefinition, Reward, StepResult, TaskRef } from '../types.js';

/** `env.options` of `toy/guess`. */
export const guessOptionsSchema = z
  .object({
    maxNumber: z.number().int().min(2).max(1_000_000).default(16).describe('The hidden number is drawn uniformly from 1..maxNumber.'),
    maxGuesses: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(5)
      .describe('Guesses per episode (invalid ones count); binary search always wins when this is ≥ ⌈log2(maxNumber+1)⌉.'),
    demoNoise: z
      .number()
      .min(0)
      .max(1)
      .default(0.5)
      .describe(
        'Demonstrations: probability that a guess is a uniformly random number consistent with the feedback instead of the binary-search midpoint.',
      ),
    demoOpening: z
      .enum(['bisect', 'random'])
      .default('bisect')
      .describe(
        'Demonstrations: the first guess is the midpoint (`bisect`) or a uniformly random number (`random`: a demonstrator that does not know the best opening).',
      ),
    hints: z
      .boolean()
      .default(false)
      .describe('Replies also name the range still possible (`higher (5-8)`), so the policy need not track it across turns.'),
  })
  .strict();

/** Parsed `toy/guess` options. */
export type GuessOptions = z.output<typeof guessOptionsSchema>;

/** Tasks per split; any other split has none. */
const SPLIT_SIZES: ReadonlyMap<string, number> = new Map([
  ['train', 100_000],
  ['eval', 1_000],
]);

/** Independent random streams derived from one task: the hidden number, and the demonstrator's choices. */
const TARGET_STREAM = 1;
const DEMO_STREAM = 2;

/** Feedback texts: the demonstrator reads them back, so they are named once. */
export const GUESS_FEEDBACK = { higher: 'higher\n', lower: 'lower\n', correct: 'correct\n' } as const;

/** The first observation of every episode. */
export function guessPrompt(options: GuessOptions): string {
  return `Guess my number from 1 to ${options.maxNumber}.\n`;
}

/** The reply to a turn that is not a whole number in range (it still uses up a guess). */
export function invalidGuessFeedback(options: GuessOptions): string {
  return `invalid guess: write a whole number from 1 to ${options.maxNumber}\n`;
}

/** Tasks in `split`: 100 000 for `train`, 1 000 for `eval`, 0 otherwise. */
export function guessTaskCount(split: string): number {
  return SPLIT_SIZES.get(split) ?? 0;
}

/**
 * The task behind a `TaskRef`: the hidden number comes from an Rng seeded with (split, index, seed), so
 * the same ref always hides the same number and `train` / `eval` tasks differ.
 */
export function guessTaskFor(task: TaskRef, options: GuessOptions): GuessTask {
  const rng = new Rng(taskSeed(task, TARGET_STREAM));
  return { target: 1 + rng.int(options.maxNumber), maxNumber: options.maxNumber, maxGuesses: options.maxGuesses };
}

/** One guessing episode. Invalid text is an observation, never an exception. */
export class GuessEnv implements Env {
  private readonly options: GuessOptions;
  private task: GuessTask | undefined;
  private turns: { role: 'env' | 'policy'; text: string }[] = [];
  private guessesMade = 0;
  private finished = false;
  /** The range still consistent with the replies so far. */
  private low = 1;
  private high = 1;

  constructor(options: GuessOptions) {
    this.options = checkOptions(options);
  }

  reset(task: TaskRef): string {
    checkTaskRef(task);
    this.task = guessTaskFor(task, this.options);
    const prompt = guessPrompt(this.options);
    this.turns = [{ role: 'env', text: prompt }];
    this.guessesMade = 0;
    this.finished = false;
    this.low = 1;
    this.high = this.options.maxNumber;
    return prompt;
  }

  step(action: string): StepResult {
    const task = this.requireTask('step');
    if (this.finished)
      throw new EnvError('toy/guess: step() called after the episode ended (done was true); create a fresh env per episode');
    this.guessesMade += 1;
    const value = parseGuess(action, task.maxNumber);
    let observation: string;
    if (value === undefined) observation = invalidGuessFeedback(this.options);
    else if (value < task.target) {
      this.low = Math.max(this.low, value + 1);
      observation = this.reply('higher');
    } else if (value > task.target) {
      this.high = Math.min(this.high, value - 1);
      observation = this.reply('lower');
    } else observation = GUESS_FEEDBACK.correct;
    this.finished = value === task.target || this.guessesMade >= task.maxGuesses;
    this.turns.push({ role: 'policy', text: action }, { role: 'env', text: observation });
    return { observation, done: this.finished };
  }

  score(): Reward {
    return guessReward(this.turns, this.requireTask('score'));
  }

  /** The episode so far: prompt, then alternating guesses and replies. */
  history(): Transcript {
    return this.turns.map((turn) => ({ ...turn }));
  }

  /** `higher\n`, or with hints `higher (5-8)\n`. */
  private reply(direction: 'higher' | 'lower'): string {
    return this.options.hints ? `${direction} (${this.low}-${this.high})\n` : GUESS_FEEDBACK[direction];
  }

  private requireTask(method: string): GuessTask {
    if (this.task === undefined) throw new EnvError(`toy/guess: ${method}() called before reset()`);
    return this.task;
  }
}

/**
 * A scripted episode for the SFT warm start. The solver keeps the interval [low, high] of numbers
 * consistent with the feedback so far and guesses inside it: with probability `demoNoise` a uniformly
 * random member, otherwise the midpoint ⌊(low + high) / 2⌋. Deterministic per task (own Rng stream).
 * Ends with `correct` or when the guesses run out.
 */
export function guessDemonstration(task: TaskRef, options: GuessOptions): Demonstration {
  const env = new GuessEnv(options);
  const rng = new Rng(taskSeed(task, DEMO_STREAM));
  const turns: { role: 'env' | 'policy'; text: string }[] = [{ role: 'env', text: env.reset(task) }];
  let low = 1;
  let high = options.maxNumber;
  for (let turn = 0; ; turn++) {
    const explore = (turn === 0 && options.demoOpening === 'random') || rng.next() < options.demoNoise;
    const guess = explore ? low + rng.int(high - low + 1) : Math.floor((low + high) / 2);
    const { observation, done } = env.step(String(guess));
    turns.push({ role: 'policy', text: String(guess) }, { role: 'env', text: observation });
    if (observation.startsWith('higher')) low = guess + 1;
    else if (observation.startsWith('lower')) high = guess - 1;
    if (done) return { turns };
  }
}

/** The built-in definition registered as `toy/guess`. */
export const guessEnv: EnvDefinition<GuessOptions> = {
  name: 'toy/guess',
  description: 'Guess a hidden number from higher/lower feedback; reward 1 if found within maxGuesses.',
  optionsSchema: guessOptionsSchema,
  taskCount: guessTaskCount,
  create: (options) => new GuessEnv(options),
  demonstrations: guessDemonstration,
};

/** FNV-1a hash of the split name, so each split gets its own seed space. */
function splitHash(split: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < split.length; i++) {
    h ^= split.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function taskSeed(task: TaskRef, stream: number): number {
  return mixSeed(splitHash(task.split), task.index, task.seed, stream);
}

function checkTaskRef(task: TaskRef): void {
  const count = guessTaskCount(task.split);
  if (count === 0) {
    const splits = [...SPLIT_SIZES].map(([name, size]) => `${name} (${size} tasks)`).join(', ');
    throw new ConfigError(`toy/guess has no split '${task.split}'; valid splits: ${splits}`);
  }
  if (!Number.isInteger(task.index) || task.index < 0 || task.index >= count) {
    throw new ConfigError(`toy/guess: task index ${task.index} is outside split '${task.split}' (0..${count - 1})`);
  }
}

/** Options reach `create` already parsed; re-check so a hand-built options object cannot break the invariants. */
function checkOptions(options: GuessOptions): GuessOptions {
  const parsed = guessOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${['env', 'options', ...issue.path].join('.')}: ${issue.message}`);
    throw new ConfigError(`toy/guess: invalid options (${issues.join('; ')}); parse them with validateEnvOptions first`);
  }
  return parsed.data;
}
