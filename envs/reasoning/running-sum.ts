/**
 * `reasoning/running-sum` — the sum of a list of digits modulo M, written out one digit at a time.
 * Difficulty knobs: the list length n (trace length grows linearly) and the modulus M.
 *
 * The question labels every digit with its index, so the next digit is found by copying after `i:` in
 * the question rather than by counting positions:
 * ```
 * question  "Sum mod 100: 0:3 1:1 2:4 3:1 4:5\n"
 * trace     "0:3=3 1:1=4 2:4=8 3:1=9 4:5=14 </think> \boxed{14}"
 * ```
 * Every entry `i:d=s` is the whole state (index and running sum), so a carryover that always holds one
 * complete entry is enough to continue after a context reset: m ≥ `runningSumCarryoverTokens` (16 for the
 * defaults). With the defaults (n 16, M 100) a trace is about 140 bytes: several chunks of C = 64.
 * The scripted solver slips with probability `noise` per entry (the written sum is off by one and the
 * trace carries on from it), so demonstrations are imperfect when noise > 0.
 */
import { z } from 'zod';
import { Rng } from '../../core/rng.js';
import type { Demonstration, EnvDefinition, TaskRef } from '../types.js';
import {
  GENERATED_SPLIT_SIZES,
  checkTaskRef,
  finalAnswerText,
  generatedTaskCount,
  problemSeed,
  generatedTaskEnv,
  scriptedDemonstration,
  type GeneratedTask,
  type ReasoningProblem,
} from './common.js';

const NAME = 'reasoning/running-sum';
const PROBLEM_STREAM = 1;

/** `env.options` of `reasoning/running-sum`. */
export const runningSumOptionsSchema = z
  .object({
    length: z.number().int().min(1).max(100_000).default(16).describe('n: digits in the list (the largest n when minLength is set).'),
    minLength: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .optional()
      .describe('When set, each problem draws its length uniformly from minLength..length (default: always `length`).'),
    modulus: z
      .number()
      .int()
      .min(2)
      .max(1_000_000)
      .default(100)
      .describe('M: the sum is taken modulo M at every step (10 or 100 keep entries short).'),
    noise: z
      .number()
      .min(0)
      .max(1)
      .default(0)
      .describe('Demonstrations: probability that an entry of the scripted trace writes a wrong sum (off by one), carried on from there.'),
  })
  .strict()
  .refine((o) => o.minLength === undefined || o.minLength <= o.length, { message: 'minLength must be ≤ length' });

/** Parsed `reasoning/running-sum` options. */
export type RunningSumOptions = z.output<typeof runningSumOptionsSchema>;

/** One running-sum problem. */
export interface RunningSumProblem extends ReasoningProblem {
  readonly digits: readonly number[];
  readonly modulus: number;
}

/** The question text for `digits` and modulus `modulus`. */
export function runningSumQuestion(digits: readonly number[], modulus: number): string {
  return `Sum mod ${modulus}: ${digits.map((d, i) => `${i}:${d}`).join(' ')}\n`;
}

/** The problem behind a task: digits 0–9 uniformly at random from the task's own stream. */
export function runningSumProblem(task: TaskRef, options: RunningSumOptions): RunningSumProblem {
  checkTaskRef(NAME, task, generatedTaskCount, [...GENERATED_SPLIT_SIZES.keys()]);
  const rng = new Rng(problemSeed(NAME, task, PROBLEM_STREAM));
  const min = options.minLength ?? options.length;
  const n = min + rng.int(options.length - min + 1);
  const digits = Array.from({ length: n }, () => rng.int(10));
  const answer = String(digits.reduce((s, d) => (s + d) % options.modulus, 0));
  return { question: runningSumQuestion(digits, options.modulus), answer, digits, modulus: options.modulus };
}

/**
 * The scripted trace: `i:d=s` per digit separated by spaces, then `</think> \boxed{s}`. With `noise` > 0
 * each entry's sum is off by ±1 (mod M) with that probability, using `rng`; later entries add to the
 * written (possibly wrong) sum, as a person carrying a slip forward would.
 */
export function runningSumTrace(problem: RunningSumProblem, noise = 0, rng?: Rng): string {
  if (noise > 0 && rng === undefined) throw new RangeError('runningSumTrace: noise > 0 needs an rng');
  const M = problem.modulus;
  let sum = 0;
  const entries = problem.digits.map((digit, i) => {
    sum = (sum + digit) % M;
    if (noise > 0 && rng!.next() < noise) sum = (sum + (rng!.next() < 0.5 ? M - 1 : 1)) % M;
    return `${i}:${digit}=${sum}`;
  });
  return `${entries.join(' ')} ${finalAnswerText(String(sum))}`;
}

/**
 * Carryover (in byte tokens) that always holds a complete entry `i:d=s` with the spaces around it, so the
 * trace can be continued after a context reset: 2 · (longest entry + 1). Defaults (n 16, M 100): 16.
 */
export function runningSumCarryoverTokens(options: Pick<RunningSumOptions, 'length' | 'modulus'>): number {
  const longestEntry = String(options.length - 1).length + 3 + String(options.modulus - 1).length;
  return 2 * (longestEntry + 1);
}

const TASK: GeneratedTask<RunningSumOptions, RunningSumProblem> = {
  name: NAME,
  description: 'Sum of n labelled digits modulo M, one entry per digit; reward 1 for the right boxed answer after </think>.',
  optionsSchema: runningSumOptionsSchema,
  problem: runningSumProblem,
  trace: runningSumTrace,
};

/** The scripted demonstration of a task (deterministic per task; its own random stream for slips). */
export function runningSumDemonstration(task: TaskRef, options: RunningSumOptions): Demonstration {
  return scriptedDemonstration(TASK, task, options);
}

/** The built-in definition registered as `reasoning/running-sum`. */
export const runningSumEnv: EnvDefinition<RunningSumOptions> = generatedTaskEnv(TASK);
