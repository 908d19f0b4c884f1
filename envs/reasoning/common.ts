/**
 * What the single-answer reasoning environments share: the episode (a question, ONE policy turn holding
 * the whole trace, a verified final answer), splits with disjoint seeds, and task checks.
 *
 * Episode: `reset(task)` → the question; `step(text)` is called once, by the tracer, with the text of
 * the trace's LAST chunk (its carryover and response; docs/delethink.md, "The verifier"), and returns
 * `done: true`; `score()` verifies the
 * final answer with `rewards/answer.ts`: `{ total: 1 | 0, parts: { correct, answered } }`. A trace that
 * never wrote an answer (e.g. truncated at the chunk cap) scores 0 with `answered: 0`. Under the plain
 * multi-turn runner the same env is a one-turn task (LongCoT without the tracer).
 */
import { ConfigError, EnvError } from '../../core/errors.js';
import { Rng, mixSeed } from '../../core/rng.js';
import type { z } from 'zod';
import { extractAnswer, verifyAnswer, type AnswerOptions } from '../../rewards/answer.js';
import type { Demonstration, Env, EnvDefinition, Reward, StepResult, TaskRef } from '../types.js';

/** One problem: the question the policy sees and the expected final answer. */
export interface ReasoningProblem {
  readonly question: string;
  readonly answer: string;
}

/** Tasks per split of the generated (built-in) tasks. */
export const GENERATED_SPLIT_SIZES: ReadonlyMap<string, number> = new Map([
  ['train', 100_000],
  ['eval', 1_000],
  ['test', 1_000],
]);

/** Distinct id of each split in the seed mix, so no two splits share a problem seed. */
const SPLIT_IDS: ReadonlyMap<string, number> = new Map([
  ['train', 1],
  ['eval', 2],
  ['test', 3],
]);

/**
 * The seed of one random stream of a generated problem. Train problems mix in the run's seed
 * (`task.seed`), so runs with different seeds see different training problems; eval and test problems do
 * not, so every run is measured on the same held-out problems. Splits never share a seed input (each
 * split has its own id in the mix), so the splits are disjoint streams.
 */
export function problemSeed(envName: string, task: TaskRef, stream: number): number {
  const split = SPLIT_IDS.get(task.split);
  if (split === undefined) throw new ConfigError(`${envName}: unknown split '${task.split}'; valid splits: train, eval, test`);
  return task.split === 'train'
    ? mixSeed(nameHash(envName), split, task.index, task.seed, stream)
    : mixSeed(nameHash(envName), split, task.index, stream);
}

/** Tasks in `split` for the generated environments: 100 000 train, 1 000 eval, 1 000 test, else 0. */
export function generatedTaskCount(split: string): number {
  return GENERATED_SPLIT_SIZES.get(split) ?? 0;
}

/** Throws ConfigError unless `task` names an existing task of a split with `count(split)` tasks. */
export function checkTaskRef(envName: string, task: TaskRef, count: (split: string) => number, splits: readonly string[]): void {
  const size = count(task.split);
  if (size === 0) {
    throw new ConfigError(
      `${envName} has no tasks in split '${task.split}'; splits: ${splits.map((s) => `${s} (${count(s)} tasks)`).join(', ')}`,
    );
  }
  if (!Number.isInteger(task.index) || task.index < 0 || task.index >= size) {
    throw new ConfigError(`${envName}: task index ${task.index} is outside split '${task.split}' (0..${size - 1})`);
  }
}

/** The reward of a response against a problem (pure): `{ total, parts: { correct, answered } }`. */
export function answerReward(response: string, expected: string, options: AnswerOptions): Reward {
  const verdict = verifyAnswer(response, expected, options);
  const answered = extractAnswer(response, options).answer !== undefined ? 1 : 0;
  const correct = verdict.correct ? 1 : 0;
  return { total: correct, parts: { correct, answered } };
}

/** A demonstration holding the whole scripted trace as one policy turn. */
export function traceDemonstration(question: string, trace: string): Demonstration {
  return {
    turns: [
      { role: 'env', text: question },
      { role: 'policy', text: trace },
    ],
  };
}

/** One single-answer episode over problems given by `problemOf`. */
export class SingleAnswerEnv implements Env {
  private problem: ReasoningProblem | undefined;
  private response: string | undefined;

  constructor(
    private readonly envName: string,
    private readonly problemOf: (task: TaskRef) => ReasoningProblem,
    private readonly answerOptions: AnswerOptions,
  ) {}

  reset(task: TaskRef): string {
    this.problem = this.problemOf(task);
    this.response = undefined;
    return this.problem.question;
  }

  /** The trace's final text (the last chunk); the episode is over after it. */
  step(action: string): StepResult {
    if (this.problem === undefined) throw new EnvError(`${this.envName}: step() called before reset()`);
    if (this.response !== undefined) throw new EnvError(`${this.envName}: step() called twice; the whole trace is one turn`);
    this.response = action;
    return { observation: '', done: true };
  }

  score(): Reward {
    if (this.problem === undefined) throw new EnvError(`${this.envName}: score() called before reset()`);
    return answerReward(this.response ?? '', this.problem.answer, this.answerOptions);
  }
}

/** End of the thinking part and the boxed final answer, as every built-in solver writes it. */
export function finalAnswerText(answer: string): string {
  return `</think> \\boxed{${answer}}`;
}

/** FNV-1a of a name: each environment gets its own seed space. */
function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Random stream of a generated task's scripted solver (its slips), apart from the problem's own stream. */
const SOLVER_STREAM = 2;

/**
 * What a generated single-answer reasoning task defines: its options, its problem per task and the
 * scripted solver's trace. `generatedTaskEnv` and `scriptedDemonstration` build the rest the same way
 * for every such task.
 */
export interface GeneratedTask<Options extends { readonly noise: number }, Problem extends ReasoningProblem> {
  readonly name: string;
  readonly description: string;
  readonly optionsSchema: z.ZodType<Options>;
  problem(task: TaskRef, options: Options): Problem;
  /** The solver's full trace; with probability `noise` per step it slips (drawing from `rng`). */
  trace(problem: Problem, noise: number, rng: Rng): string;
}

/** The scripted demonstration of a task (deterministic per task; its own random stream for slips). */
export function scriptedDemonstration<O extends { readonly noise: number }, P extends ReasoningProblem>(
  def: GeneratedTask<O, P>,
  task: TaskRef,
  options: O,
): Demonstration {
  const problem = def.problem(task, options);
  return traceDemonstration(problem.question, def.trace(problem, options.noise, new Rng(problemSeed(def.name, task, SOLVER_STREAM))));
}

/** The built-in `EnvDefinition` of a generated task, with the scripted solver as its `demonstrator` baseline. */
export function generatedTaskEnv<O extends { readonly noise: number }, P extends ReasoningProblem>(
  def: GeneratedTask<O, P>,
): EnvDefinition<O> {
  const checked = (options: O): O => {
    const parsed = def.optionsSchema.safeParse(options);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((issue) => `${['env', 'options', ...issue.path.map(String)].join('.')}: ${issue.message}`);
      throw new ConfigError(`${def.name}: invalid options (${issues.join('; ')})`);
    }
    return parsed.data;
  };
  return {
    name: def.name,
    description: def.description,
    optionsSchema: def.optionsSchema,
    taskCount: (split) => generatedTaskCount(split),
    create: (options) => {
      const o = checked(options);
      return new SingleAnswerEnv(def.name, (task) => def.problem(task, o), { requireEndOfThinking: true });
    },
    demonstrations: (task, options) => scriptedDemonstration(def, task, checked(options)),
    /** `demonstrator`: the scripted solver's full trace with the configured `noise` (the SFT ceiling). */
    baselines: (task, options) => {
      const o = checked(options);
      return {
        demonstrator: answerReward(scriptedDemonstration(def, task, o).turns[1].text, def.problem(task, o).answer, {
          requireEndOfThinking: true,
        }),
      };
    },
  };
}
