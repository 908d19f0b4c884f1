/**
 * `reasoning/multiply` — long multiplication of an a-digit by a b-digit number, written out column by
 * column (the schoolbook convolution). Difficulty knobs: `digitsA`, `digitsB` (the trace grows with
 * their product).
 *
 * Column k (k = 0 is the units) sums the products a_i·b_j with i + j = k, j ascending, starting from the
 * carry c of the previous column; its entry writes each running sum, then the column index and the
 * result digits so far (most significant first). The next carry is the last running sum without its
 * last digit. Columns continue until every product is used and the carry is 0:
 * ```
 * question  "Multiply 4721*36\n"
 * trace     "c0+1*6=6 k0 r6; c0+2*6=12+1*3=15 k1 r56; c1+7*6=43+2*3=49 k2 r956;
 *            c4+4*6=28+7*3=49 k3 r9956; c4+4*3=16 k4 r69956; c1 k5 r169956; </think> \boxed{169956}"
 * ```
 * (one line in the trace). Every entry ends with the state the next one needs (carry via the last sum,
 * k, r), so a carryover m ≥ `multiplyCarryoverTokens` (59 bytes for the defaults) always holds enough to
 * continue. Defaults 4 × 3 digits: about 200 bytes, several chunks of C = 128, m = 64. `noise` makes the
 * scripted solver slip: a running sum off by one (carried on from there).
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

const NAME = 'reasoning/multiply';
const PROBLEM_STREAM = 1;

/** `env.options` of `reasoning/multiply`. */
export const multiplyOptionsSchema = z
  .object({
    digitsA: z.number().int().min(1).max(200).default(4).describe('Digits of the first factor (leading digit 1–9).'),
    digitsB: z.number().int().min(1).max(200).default(3).describe('Digits of the second factor (leading digit 1–9).'),
    noise: z
      .number()
      .min(0)
      .max(1)
      .default(0)
      .describe('Demonstrations: probability that a running sum of the scripted trace is off by one, carried on from there.'),
  })
  .strict();

/** Parsed `reasoning/multiply` options. */
export type MultiplyOptions = z.output<typeof multiplyOptionsSchema>;

/** One multiplication problem; factors as decimal strings (most significant digit first). */
export interface MultiplyProblem extends ReasoningProblem {
  readonly a: string;
  readonly b: string;
}

/** The question text of a × b. */
export function multiplyQuestion(a: string, b: string): string {
  return `Multiply ${a}*${b}\n`;
}

/** The problem behind a task: factors with the configured digit counts, leading digit non-zero. */
export function multiplyProblem(task: TaskRef, options: MultiplyOptions): MultiplyProblem {
  checkTaskRef(NAME, task, generatedTaskCount, [...GENERATED_SPLIT_SIZES.keys()]);
  const rng = new Rng(problemSeed(NAME, task, PROBLEM_STREAM));
  const number = (digits: number) => Array.from({ length: digits }, (_, i) => String(i === 0 ? 1 + rng.int(9) : rng.int(10))).join('');
  const a = number(options.digitsA);
  const b = number(options.digitsB);
  return { question: multiplyQuestion(a, b), answer: (BigInt(a) * BigInt(b)).toString(), a, b };
}

/**
 * The scripted column-by-column trace (see the module comment). With `noise` > 0 each running sum is
 * off by ±1 (never below 0) with that probability, using `rng`; the trace continues from the written value.
 */
export function multiplyTrace(problem: MultiplyProblem, noise = 0, rng?: Rng): string {
  if (noise > 0 && rng === undefined) throw new RangeError('multiplyTrace: noise > 0 needs an rng');
  const a = [...problem.a].reverse().map(Number);
  const b = [...problem.b].reverse().map(Number);
  const lastColumn = a.length + b.length - 2;
  const entries: string[] = [];
  let result = '';
  let carry = 0;
  for (let k = 0; k <= lastColumn || carry > 0; k++) {
    let sum = carry;
    let text = `c${carry}`;
    for (let j = 0; j < b.length; j++) {
      const i = k - j;
      if (i < 0 || i >= a.length) continue;
      sum += a[i] * b[j];
      if (noise > 0 && rng!.next() < noise) sum = sum === 0 || rng!.next() < 0.5 ? sum + 1 : sum - 1;
      text += `+${a[i]}*${b[j]}=${sum}`;
    }
    result = `${sum % 10}${result}`;
    carry = Math.floor(sum / 10);
    entries.push(`${text} k${k} r${result};`);
  }
  const answer = result.replace(/^0+(?=\d)/, '');
  return `${entries.join(' ')} ${finalAnswerText(answer)}`;
}

/**
 * Carryover (in byte tokens) that always holds one complete state `=S k<k> r<digits>;` (or `cS k… r…;`),
 * whatever the digits: the longest entry plus the longest state, bounding every running sum by
 * 90·min(digitsA, digitsB) (products ≤ 81 each, carries ≤ 9 per product). Defaults (4 × 3): 59, so use
 * e.g. C = 128, m = 64.
 */
export function multiplyCarryoverTokens(options: Pick<MultiplyOptions, 'digitsA' | 'digitsB'>): number {
  const terms = Math.min(options.digitsA, options.digitsB);
  const sumDigits = String(90 * terms).length;
  const resultDigits = options.digitsA + options.digitsB;
  const kDigits = String(resultDigits - 1).length;
  const longestEntry = 1 + sumDigits + terms * (5 + sumDigits) + 2 + kDigits + 2 + resultDigits + 1;
  const longestState = 1 + sumDigits + 2 + kDigits + 2 + resultDigits + 1;
  return longestEntry + 1 + longestState;
}

const TASK: GeneratedTask<MultiplyOptions, MultiplyProblem> = {
  name: NAME,
  description: 'Long multiplication written out column by column; reward 1 for the right boxed product after </think>.',
  optionsSchema: multiplyOptionsSchema,
  problem: multiplyProblem,
  trace: multiplyTrace,
};

/** The scripted demonstration of a task (deterministic per task; its own random stream for slips). */
export function multiplyDemonstration(task: TaskRef, options: MultiplyOptions): Demonstration {
  return scriptedDemonstration(TASK, task, options);
}

/** The built-in definition registered as `reasoning/multiply`. */
export const multiplyEnv: EnvDefinition<MultiplyOptions> = generatedTaskEnv(TASK);
