/**
 * `reasoning/jsonl` — your own question/answer data as a single-answer reasoning task. Each non-empty
 * line of the file is a JSON object:
 * ```
 * {"question": "What is 17 * 23?", "answer": "391"}
 * {"question": "Simplify 6/8.", "answer": "\\frac{3}{4}", "trace": "6/8 = 3/4 </think> \\boxed{3/4}"}
 * ```
 * `question` (non-empty text) is what the policy sees; `answer` (text or number) is compared with the
 * final answer of the trace by `rewards/answer.ts` (numbers, fractions, `\boxed{}`, LaTeX wrappers are
 * normalised); the optional `trace` is a worked solution used as the SFT demonstration. Other keys are
 * ignored. Splits: either one file (`path`) cut into test / eval / train by fractions after a seeded
 * shuffle, or one file per split (`files`). Paths are absolute or relative to the working directory.
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../../core/errors.js';
import { Rng } from '../../core/rng.js';
import type { Demonstration, EnvDefinition, TaskRef } from '../types.js';
import { SingleAnswerEnv, checkTaskRef, traceDemonstration, type ReasoningProblem } from './common.js';

const NAME = 'reasoning/jsonl';
const SPLITS = ['train', 'eval', 'test'] as const;

/** `env.options` of `reasoning/jsonl`. */
export const jsonlOptionsSchema = z
  .object({
    path: z
      .string()
      .min(1)
      .optional()
      .describe('One JSONL file of {question, answer[, trace]} lines, split by evalFraction / testFraction.'),
    files: z
      .object({
        train: z.string().min(1).optional().describe('JSONL file of the train split.'),
        eval: z.string().min(1).optional().describe('JSONL file of the eval split.'),
        test: z.string().min(1).optional().describe('JSONL file of the test split.'),
      })
      .strict()
      .optional()
      .describe('One JSONL file per split, instead of `path`.'),
    evalFraction: z.number().min(0).max(1).default(0.1).describe('With `path`: share of the lines in the eval split (rounded down).'),
    testFraction: z.number().min(0).max(1).default(0.1).describe('With `path`: share of the lines in the test split (rounded down).'),
    shuffleSeed: z.number().int().min(0).default(0).describe('With `path`: seed of the shuffle before the lines are cut into splits.'),
    requireEndOfThinking: z
      .boolean()
      .default(true)
      .describe('The answer must follow `</think>` (the Delethink reward); false searches the whole last chunk.'),
  })
  .strict()
  .refine((o) => (o.path === undefined) !== (o.files === undefined), { message: 'set exactly one of `path` or `files`' })
  .refine((o) => o.evalFraction + o.testFraction <= 1, { message: 'evalFraction + testFraction must be ≤ 1' });

/** Parsed `reasoning/jsonl` options. */
export type JsonlOptions = z.output<typeof jsonlOptionsSchema>;

/** One line of the data file. */
export const JsonlProblemSchema = z.object({
  question: z.string().min(1),
  answer: z.union([z.string().trim().min(1), z.number().finite()]).transform((a) => String(a)),
  trace: z.string().min(1).optional(),
});

/** A loaded problem with where it came from (for messages). */
export interface JsonlProblem extends ReasoningProblem {
  readonly trace?: string;
  /** `file:line` of the source line. */
  readonly source: string;
}

/**
 * Parse JSONL text: one problem per non-empty line. Throws ConfigError naming the file and line of the
 * first bad line (invalid JSON, a missing or empty `question` / `answer`, a wrong type).
 */
export function parseJsonlProblems(text: string, file: string): JsonlProblem[] {
  const problems: JsonlProblem[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const where = `${file}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new ConfigError(
        `${NAME}: ${where} is not valid JSON (${(err as Error).message}); each line must be {"question": …, "answer": …}`,
        {
          cause: err,
          context: { file, line: i + 1 },
        },
      );
    }
    const parsed = JsonlProblemSchema.safeParse(value);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(line)'}: ${issue.message}`).join('; ');
      throw new ConfigError(
        `${NAME}: ${where}: ${issues}; each line must be {"question": text, "answer": text or number[, "trace": text]}`,
        {
          context: { file, line: i + 1 },
        },
      );
    }
    problems.push({ ...parsed.data, source: where });
  });
  return problems;
}

/** The problems of each split. */
export type JsonlSplits = Readonly<Record<(typeof SPLITS)[number], readonly JsonlProblem[]>>;

/**
 * Cut one list into splits: a seeded shuffle of the line order, then the first ⌊n·testFraction⌋ lines are
 * `test`, the next ⌊n·evalFraction⌋ `eval`, the rest `train`. Deterministic for a given seed.
 */
export function splitProblems(problems: readonly JsonlProblem[], evalFraction: number, testFraction: number, seed: number): JsonlSplits {
  const order = new Rng(seed).shuffle(problems.map((_, i) => i));
  const testCount = Math.floor(problems.length * testFraction);
  const evalCount = Math.floor(problems.length * evalFraction);
  const pick = (from: number, to: number) => order.slice(from, to).map((i) => problems[i]);
  return { test: pick(0, testCount), eval: pick(testCount, testCount + evalCount), train: pick(testCount + evalCount, problems.length) };
}

const cache = new Map<string, { stamp: string; problems: JsonlProblem[] }>();

/** Read and parse a JSONL file (cached until its size or modification time changes). */
export function loadJsonlFile(file: string): JsonlProblem[] {
  const path = resolve(file);
  let stamp: string;
  try {
    const stats = statSync(path);
    stamp = `${stats.size}:${stats.mtimeMs}`;
  } catch (err) {
    throw new ConfigError(
      `${NAME}: cannot read ${path} (${(err as Error).message}); env.options.path / files are absolute or relative to ${process.cwd()}`,
      {
        cause: err,
        context: { path },
      },
    );
  }
  const hit = cache.get(path);
  if (hit && hit.stamp === stamp) return hit.problems;
  const problems = parseJsonlProblems(readFileSync(path, 'utf8'), file);
  cache.set(path, { stamp, problems });
  return problems;
}

/** The problems of every split for `options`. */
export function jsonlSplits(options: JsonlOptions): JsonlSplits {
  if (options.path !== undefined)
    return splitProblems(loadJsonlFile(options.path), options.evalFraction, options.testFraction, options.shuffleSeed);
  const files = options.files ?? {};
  return {
    train: files.train ? loadJsonlFile(files.train) : [],
    eval: files.eval ? loadJsonlFile(files.eval) : [],
    test: files.test ? loadJsonlFile(files.test) : [],
  };
}

/** Tasks in `split` (0 for a split without data). */
export function jsonlTaskCount(split: string, options: JsonlOptions): number {
  return (SPLITS as readonly string[]).includes(split) ? jsonlSplits(options)[split as (typeof SPLITS)[number]].length : 0;
}

/** The problem of a task. */
export function jsonlProblem(task: TaskRef, options: JsonlOptions): JsonlProblem {
  const splits = jsonlSplits(options);
  checkTaskRef(NAME, task, (split) => jsonlTaskCount(split, options), SPLITS);
  return splits[task.split as (typeof SPLITS)[number]][task.index];
}

/** The line's `trace` as the SFT demonstration; a line without one cannot be demonstrated (ConfigError). */
export function jsonlDemonstration(task: TaskRef, options: JsonlOptions): Demonstration {
  const problem = jsonlProblem(task, options);
  if (problem.trace === undefined) {
    throw new ConfigError(
      `${NAME}: ${problem.source} has no "trace", so it cannot be a demonstration; add a worked "trace" to every line or set sft.steps: 0`,
    );
  }
  return traceDemonstration(problem.question, problem.trace);
}

/** The built-in definition registered as `reasoning/jsonl`. */
export const jsonlEnv: EnvDefinition<JsonlOptions> = {
  name: NAME,
  description:
    'Question/answer pairs from a JSONL file; reward 1 when the final answer matches (numbers, fractions, \\boxed{} normalised).',
  optionsSchema: jsonlOptionsSchema,
  taskCount: jsonlTaskCount,
  create: (options) => {
    const checked = checkOptions(options);
    return new SingleAnswerEnv(NAME, (task) => jsonlProblem(task, checked), { requireEndOfThinking: checked.requireEndOfThinking });
  },
  demonstrations: (task, options) => jsonlDemonstration(task, checkOptions(options)),
};

function checkOptions(options: JsonlOptions): JsonlOptions {
  const parsed = jsonlOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${['env', 'options', ...issue.path].join('.')}: ${issue.message}`);
    throw new ConfigError(`${NAME}: invalid options (${issues.join('; ')})`);
  }
  return parsed.data;
}
