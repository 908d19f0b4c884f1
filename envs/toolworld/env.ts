/**
 * `toolworld` — a stateful multi-app API environment for LOOP (docs/toolworld.md).
 *
 * An episode: the prompt states the task; each agent turn is a message of calls (`app.api {json}`, one
 * per line, see parser.ts); the environment runs them on the world and replies with their results (JSON,
 * truncated with a note) — parse errors and API errors are replies too, never exceptions. The episode
 * ends when `supervisor.complete_task` succeeds or after `maxTurns` turns. The score runs the task's
 * checks on the final world: total = passed / total checks; `passed_all` = 1 when every check passed.
 *
 * Transcript of task train#0 (seed 0) with `prompt: compact, docs: off, auth: false, worldSize: tiny,
 * reminder: false` — replayed by test/unit/toolworld/env.test.ts:
 * ```
 * env     "Today: 2024-08-26T10:00:00\nTask: Delete my note \"garden\".\n"
 * policy  notes.search_notes {"query":"garden"}
 * env     notes.search_notes: {"items":[{"id":2,"title":"garden","tags":["travel","money"],"created_at":"2024-08-12T09:00:00"}],"page":0,"next_page":null}
 * policy  notes.delete_note {"note_id":2}
 *         supervisor.complete_task
 * env     notes.delete_note: {"message":"Note 2 deleted."}
 *         supervisor.complete_task: {"message":"Task marked complete."}
 *         (done; checks `deleted notes#2` and `nothing_extraneous` pass → reward 1)
 * ```
 */
import { ConfigError, EnvError } from '../../core/errors.js';
import { Rng, mixSeed } from '../../core/rng.js';
import type { Demonstration, Env, EnvDefinition, Reward, StepResult, TaskRef } from '../types.js';
import { newSession, type ApiContext, type Session } from './api.js';
import { APPS, apiSignature } from './apps/index.js';
import { runChecks, type CheckResult } from './checks.js';
import { executeCalls, renderTurn, truncateWithNote, type CallOutcome } from './executor.js';
import { toolworldOptionsSchema, type ToolworldOptions } from './options.js';
import { toolworldMetrics } from './metrics.js';
import { formatCalls, parseAction } from './parser.js';
import { SolverContext, SolverStuck, call, type SolverNoise } from './solver.js';
import { generateTask, taskCount, type GeneratedTask } from './tasks.js';
import { cloneWorld, type World } from './world.js';

/** The reply to a message without any call. */
export const NO_CALL_REPLY =
  'error: no API call found. Write one call per line, like notes.show_note {"note_id": 1}; finish with supervisor.complete_task.';

/** The note added when the turn cap ends the episode. */
export const TURN_LIMIT_NOTE = '[turn limit reached: the episode is over]';

/** The first observation of a task (see the `prompt` and `docs` options). */
export function toolworldPrompt(task: GeneratedTask, options: ToolworldOptions): string {
  const { supervisor, now } = task.initial;
  const lines: string[] = [];
  if (options.prompt === 'full') {
    lines.push(`I am ${supervisor.first_name} ${supervisor.last_name} (${supervisor.email}). It is ${now}.`);
  } else {
    lines.push(`Today: ${now}`);
  }
  lines.push(`Task: ${task.draft.instruction}`);
  if (options.prompt === 'full') {
    lines.push('Act with API calls, one per line: app.api {"arg": value}. Results come back as JSON.');
    if (options.docs === 'lookup' || options.docs === 'enforced') {
      lines.push(
        'Find apps and APIs with api_docs.show_app_descriptions, api_docs.show_api_descriptions {"app_name": ...} and api_docs.show_api_doc {"app_name": ..., "api_name": ...}' +
          (options.docs === 'enforced' ? '; read the doc of an API before calling it.' : '.'),
      );
    }
    if (options.auth) {
      lines.push(
        'Log in with app.login {"username": your email, "password": ...} (passwords: supervisor.show_account_passwords) and pass its access_token to that app.',
      );
    }
    lines.push('Lists are paginated: ask for "page" 0, 1, ... until next_page is null.');
    lines.push('When done: supervisor.complete_task, with {"answer": ...} if the task asks a question.');
  }
  if (options.docs === 'prompt') {
    const apps = ['supervisor', ...task.location.template.apps];
    const signatures = apps.flatMap((app) =>
      [...APPS.get(app)!.apis.values()].filter((api) => options.auth || api.name !== 'login').map(apiSignature),
    );
    lines.push(`APIs: ${signatures.join('; ')}`);
  }
  return `${lines.join('\n')}\n`;
}

/** One toolworld episode. */
export class ToolworldEnv implements Env {
  private readonly options: ToolworldOptions;
  private task: GeneratedTask | undefined;
  private world: World | undefined;
  private session: Session = newSession();
  private turns = 0;
  private finished = false;
  private outcomes: CallOutcome[] = [];
  private stats = { apiCalls: 0, apiErrors: 0, parseErrors: 0 };

  constructor(options: ToolworldOptions) {
    this.options = checkOptions(options);
  }

  reset(task: TaskRef): string {
    this.task = generateTask(task, this.options);
    this.world = cloneWorld(this.task.initial);
    this.session = newSession();
    this.turns = 0;
    this.finished = false;
    this.outcomes = [];
    this.stats = { apiCalls: 0, apiErrors: 0, parseErrors: 0 };
    return toolworldPrompt(this.task, this.options);
  }

  step(action: string): StepResult {
    const task = this.requireTask('step');
    if (this.finished)
      throw new EnvError('toolworld: step() called after the episode ended (done was true); create a fresh env per episode');
    const options = this.options;
    this.turns += 1;
    this.outcomes = [];
    let text: string;
    const parsed = parseAction(action, options);
    if (parsed.errors.length > 0) {
      this.stats.parseErrors += 1;
      text = `error: ${parsed.errors.join('; ')}. Nothing was run. Write one call per line: app.api {"arg": value}.`;
    } else if (parsed.calls.length === 0) {
      this.stats.parseErrors += 1;
      text = NO_CALL_REPLY;
    } else {
      const ctx: ApiContext = {
        world: this.world!,
        session: this.session,
        settings: { auth: options.auth, pageSize: options.pageSize },
        apps: APPS,
      };
      const turn = executeCalls(ctx, parsed.calls, { docsEnforced: options.docs === 'enforced' });
      this.outcomes = turn.outcomes;
      this.stats.apiCalls += turn.outcomes.length;
      this.stats.apiErrors += turn.outcomes.filter((o) => !o.ok).length;
      text = renderTurn(turn, options);
    }
    this.finished = this.session.completed || this.turns >= options.maxTurns;
    if (!this.session.completed && this.finished) text += `\n${TURN_LIMIT_NOTE}`;
    else if (!this.finished && options.reminder) text += `\nTask: ${task.draft.instruction}`;
    const observation = `${truncateWithNote(text, options.maxObservationChars - 1, '')}\n`;
    return { observation, done: this.finished };
  }

  score(): Reward {
    const task = this.requireTask('score');
    const checks = this.checks();
    const passed = checks.filter((c) => c.passed).length;
    return {
      total: passed / checks.length,
      parts: {
        passed_all: passed === checks.length ? 1 : 0,
        checks_passed: passed,
        checks_total: checks.length,
        completed: this.session.completed ? 1 : 0,
        answered: task.expectation.answer === undefined ? 0 : checks.find((c) => c.name === 'answer')?.passed ? 1 : 0,
        turns: this.turns,
        api_calls: this.stats.apiCalls,
        api_errors: this.stats.apiErrors,
        parse_errors: this.stats.parseErrors,
      },
    };
  }

  /** The task's checks on the world as it is now. */
  checks(): CheckResult[] {
    const task = this.requireTask('checks');
    return runChecks(task.expectation, task.initial, this.world!, this.session);
  }

  /** The generated task of this episode (after reset). */
  get generated(): GeneratedTask {
    return this.requireTask('generated');
  }

  /** Outcomes of the last step's calls (empty after a parse error); the scripted solver reads them. */
  get lastOutcomes(): CallOutcome[] {
    return this.outcomes;
  }

  /** Whether the episode is over. */
  get done(): boolean {
    return this.finished;
  }

  private requireTask(method: string): GeneratedTask {
    if (this.task === undefined) throw new EnvError(`toolworld: ${method}() called before reset()`);
    return this.task;
  }
}

/** Random stream of the solver's noise, separate from the world's. */
const SOLVER_STREAM = 0x50;

/**
 * Play a task with the scripted solver (see solver.ts) through a fresh env. Returns the transcript
 * (prompt, then alternating messages and replies), the env (for its checks and score) and whether a
 * deliberate mistake was made. A plan that gets stuck after a mistake completes the task as it is.
 */
export function runSolver(
  task: TaskRef,
  options: ToolworldOptions,
  noise: SolverNoise,
): { demonstration: Demonstration; env: ToolworldEnv; mistaken: boolean } {
  const env = new ToolworldEnv(options);
  const turns: Array<{ role: 'env' | 'policy'; text: string }> = [{ role: 'env', text: env.reset(task) }];
  const generated = env.generated;
  const solver = new SolverContext(
    { lookupDocs: options.docs === 'lookup' || options.docs === 'enforced', auth: options.auth, maxCallsPerTurn: options.maxCallsPerTurn },
    noise,
    new Rng(mixSeed(generated.seed, SOLVER_STREAM)),
    generated.initial.supervisor.email,
  );
  const plan = (function* () {
    yield* solver.prepare(generated.draft.apis);
    yield* generated.draft.solve(solver);
  })();
  const play = (text: string): void => {
    const { observation } = env.step(text);
    turns.push({ role: 'policy', text }, { role: 'env', text: observation });
  };
  try {
    let next = plan.next();
    while (!next.done && !env.done) {
      play(formatCalls(next.value));
      if (env.done) break;
      next = plan.next(env.lastOutcomes);
    }
  } catch (err) {
    if (!(err instanceof SolverStuck) || !solver.mistaken) throw err;
    if (!env.done) play(formatCalls([call('supervisor', 'complete_task')]));
  }
  return { demonstration: { turns }, env, mistaken: solver.mistaken };
}

/** SFT demonstrations: the solver with the options' noise (`demoNoise`, `demoSlip`). */
export function toolworldDemonstration(task: TaskRef, options: ToolworldOptions): Demonstration {
  return runSolver(task, options, { mistake: options.demoNoise, slip: options.demoSlip }).demonstration;
}

/** The built-in definition registered as `toolworld`. */
export const toolworldEnv: EnvDefinition<ToolworldOptions> = {
  name: 'toolworld',
  description:
    'Stateful multi-app API world (phone, mail, notes, wallet, files, calendar, todo): solve tasks with API calls; reward = share of checks passed.',
  optionsSchema: toolworldOptionsSchema,
  taskCount: (split, options) => taskCount(split, options),
  create: (options) => new ToolworldEnv(options),
  demonstrations: toolworldDemonstration,
  /** Task and scenario goal completion (TGC / SGC; a scenario counts when all 3 of its variants were evaluated). */
  summarize(results, options) {
    const m = toolworldMetrics(results, options);
    return { tgc: m.tgc, sgc: m.sgc, scenarios: m.scenarios, incomplete_scenarios: m.incompleteScenarios };
  },
};

/** Options reach `create` parsed; re-check so a hand-built options object cannot break the invariants. */
function checkOptions(options: ToolworldOptions): ToolworldOptions {
  const parsed = toolworldOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${['env', 'options', ...issue.path.map(String)].join('.')}: ${issue.message}`);
    throw new ConfigError(`toolworld: invalid options (${issues.join('; ')}); parse them with validateEnvOptions first`);
  }
  return parsed.data;
}
