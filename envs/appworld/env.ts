/**
 * `appworld` — the same training loop pointed at a real AppWorld environment server by URL (spec
 * "AppWorld adapter"). An episode leases a server (lease.ts), initialises the task there, and turns each
 * agent message into code the server runs:
 *
 * - `actions: calls` (default): the message uses toolworld's call format (`app.api {"arg": value}`, one
 *   per line; parser.ts); each call becomes the line `print(apis.app.api(**{...}))` with the arguments
 *   written as Python literals by this adapter — identifiers are checked, values are quoted, nothing of
 *   the message is passed through as code;
 * - `actions: code`: the message's ```python blocks (or the whole message) are sent as the code, as in
 *   the LOOP paper; the AppWorld server runs it in its own sandbox. Nothing is ever run locally.
 *
 * After each message the adapter asks /task_completed; the episode ends when the agent has called
 * `supervisor.complete_task` or after `maxTurns` turns. `score()` calls /evaluate once: total =
 * passed / all tests, `passed_all` = AppWorld's success flag. The adapter has not been run against a
 * real AppWorld server; it is tested against a fake that implements the endpoints it uses.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError, EnvError } from '../../core/errors.js';
import type { Env, EnvDefinition, Reward, StepResult, TaskRef } from '../types.js';
import { truncateWithNote } from '../toolworld/executor.js';
import { parseAction, type ParsedCall } from '../toolworld/parser.js';
import { AppWorldClient, type EvaluateOutput, type InitializeOutput } from './client.js';
import { acquireServer, releaseServer } from './lease.js';

/** `env.options` of appworld. */
export const appworldOptionsSchema = z
  .object({
    url: z
      .union([z.string().url(), z.array(z.string().url()).min(1)])
      .describe('URL of an AppWorld environment server (`appworld serve environment --port P`), or a list: each live episode leases one.'),
    tasks: z
      .record(z.string(), z.array(z.string().min(1)))
      .default({})
      .describe(
        'AppWorld task ids per split, e.g. {train: [82e2fac_1, …], dev: […]} (AppWorld lists the ids of each dataset after `appworld download data`).',
      ),
    tasksFile: z
      .string()
      .optional()
      .describe('A JSON file {split: [task ids]} merged with `tasks` (a relative path is resolved from the working directory).'),
    experimentName: z
      .string()
      .min(1)
      .default('horizon')
      .describe('experiment_name sent to /initialize (AppWorld writes its outputs under it).'),
    actions: z
      .enum(['calls', 'code'])
      .default('calls')
      .describe(
        "`calls`: toolworld call lines turned into apis calls by the adapter; `code`: the message's python code runs on the server.",
      ),
    maxTurns: z.number().int().min(1).max(1000).default(40).describe('Agent turns per episode (paper: 40 in training, 50 in evaluation).'),
    maxActionChars: z.number().int().min(16).max(1_000_000).default(8000).describe('Longest agent message accepted (characters).'),
    maxCallsPerTurn: z.number().int().min(1).max(100).default(10).describe('`calls` mode: most calls per message.'),
    maxObservationChars: z
      .number()
      .int()
      .min(64)
      .max(10_000_000)
      .default(3000)
      .describe('Server output longer than this is truncated with a note.'),
    timeoutMs: z.number().int().min(10).max(3_600_000).default(60_000).describe('Timeout of one HTTP request, ms.'),
    retries: z
      .number()
      .int()
      .min(0)
      .max(10)
      .default(2)
      .describe('Retries of a request after a network failure (with exponential backoff).'),
    backoffMs: z.number().int().min(0).max(60_000).default(500).describe('First retry delay, ms (doubles per retry).'),
    leaseTimeoutMs: z.number().int().min(0).max(3_600_000).default(30_000).describe('How long an episode waits for a free server URL.'),
  })
  .strict();

/** Parsed appworld options. */
export type AppWorldOptions = z.output<typeof appworldOptionsSchema>;

const fileCache = new Map<string, Record<string, string[]>>();
const TasksFileSchema = z.record(z.string(), z.array(z.string().min(1)));

/** The task ids of every split: `tasks` plus `tasksFile` (read once per path). */
export function appworldTaskIds(options: AppWorldOptions): Record<string, string[]> {
  const merged: Record<string, string[]> = {};
  if (options.tasksFile !== undefined) {
    const file = path.resolve(options.tasksFile);
    let fromFile = fileCache.get(file);
    if (fromFile === undefined) {
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        throw new ConfigError(`env.options.tasksFile: cannot read task ids from ${file}: ${(err as Error).message}`);
      }
      const parsed = TasksFileSchema.safeParse(raw);
      if (!parsed.success) throw new ConfigError(`env.options.tasksFile: ${file} must be a JSON object {split: [task ids]}`);
      fromFile = parsed.data;
      fileCache.set(file, fromFile);
    }
    for (const [split, ids] of Object.entries(fromFile)) merged[split] = [...ids];
  }
  for (const [split, ids] of Object.entries(options.tasks)) merged[split] = [...(merged[split] ?? []), ...ids];
  return merged;
}

/** A JSON value as a Python literal (strings keep JSON's escapes, which Python reads the same way). */
export function pythonLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new EnvError(`cannot pass ${value} to AppWorld`);
    return String(value);
  }
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(pythonLiteral).join(', ')}]`;
  if (typeof value === 'object') {
    return `{${Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `${JSON.stringify(k)}: ${pythonLiteral(v)}`)
      .join(', ')}}`;
  }
  throw new EnvError(`cannot pass a ${typeof value} to AppWorld`);
}

/** The code line of one call: `print(apis.notes.show_note(**{"note_id": 1}))`. */
export function callToCode(call: ParsedCall): string {
  return `print(apis.${call.app}.${call.api}(**${pythonLiteral(call.args)}))`;
}

/** The code of a `code`-mode message: its ```python (or bare ```) blocks joined, else the whole message. */
export function extractCode(message: string): string {
  const blocks = [...message.matchAll(/```(?:python|py)?[ \t]*\n([\s\S]*?)```/g)].map((m) => m[1]);
  return (blocks.length > 0 ? blocks.join('\n') : message).trim();
}

/** The prompt: who, when, the task, and how to act in the chosen action mode. */
export function appworldPrompt(task: InitializeOutput, options: AppWorldOptions): string {
  const { supervisor } = task;
  const lines = [
    `I am ${supervisor.first_name} ${supervisor.last_name} (${supervisor.email}${supervisor.phone_number ? `, ${supervisor.phone_number}` : ''}).${task.datetime ? ` It is ${task.datetime}.` : ''}`,
    `Task: ${task.instruction}`,
  ];
  if (options.actions === 'calls') {
    lines.push(
      'Act with API calls, one per line: app.api {"arg": value}. Find APIs with api_docs.show_app_descriptions, api_docs.show_api_descriptions {"app_name": ...} and api_docs.show_api_doc {"app_name": ..., "api_name": ...}.',
    );
  } else {
    lines.push(
      'Act by writing Python in a ```python block; call APIs as apis.app.api(...) and print what you need. Find APIs with apis.api_docs.show_api_doc(app_name=..., api_name=...).',
    );
  }
  lines.push('When done: supervisor.complete_task, with answer=... if the task asks a question.');
  return `${lines.join('\n')}\n`;
}

/** One episode on a leased AppWorld server. */
export class AppWorldEnv implements Env {
  private readonly options: AppWorldOptions;
  private client: AppWorldClient | undefined;
  private taskId: string | undefined;
  private turns = 0;
  private finished = false;
  private completed = false;
  private evaluation: EvaluateOutput | undefined;
  private errors = 0;

  constructor(options: AppWorldOptions) {
    const parsed = appworldOptionsSchema.safeParse(options);
    if (!parsed.success)
      throw new ConfigError(
        `appworld: invalid options (${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`,
      );
    this.options = parsed.data;
  }

  async reset(task: TaskRef): Promise<string> {
    const ids = appworldTaskIds(this.options)[task.split] ?? [];
    const taskId = ids[task.index];
    if (taskId === undefined) {
      throw new ConfigError(
        `appworld: no task ${task.index} in split '${task.split}' (${ids.length} task ids; set env.options.tasks or tasksFile)`,
      );
    }
    const urls = typeof this.options.url === 'string' ? [this.options.url] : this.options.url;
    const url = await acquireServer(urls, this.options.leaseTimeoutMs);
    this.client = new AppWorldClient(url, {
      timeoutMs: this.options.timeoutMs,
      retries: this.options.retries,
      backoffMs: this.options.backoffMs,
    });
    this.taskId = taskId;
    try {
      const output = await this.client.initialize(taskId, this.options.experimentName);
      return appworldPrompt(output, this.options);
    } catch (err) {
      // Give the server back; a failing /close must not hide why the task did not start.
      await this.close().catch(() => undefined);
      throw err;
    }
  }

  async step(action: string): Promise<StepResult> {
    const { client, taskId } = this.requireTask('step');
    if (this.finished) throw new EnvError('appworld: step() called after the episode ended; create a fresh env per episode');
    this.turns += 1;
    let observation: string;
    const code = this.codeOf(action);
    if (typeof code === 'object') {
      this.errors += 1;
      observation = code.error;
    } else {
      const output = await client.execute(taskId, code);
      observation = truncateWithNote(output.trim() === '' ? '(no output)' : output, this.options.maxObservationChars, '');
      this.completed = await client.taskCompleted(taskId);
    }
    this.finished = this.completed || this.turns >= this.options.maxTurns;
    return { observation: `${observation}\n`, done: this.finished };
  }

  async score(): Promise<Reward> {
    const { client, taskId } = this.requireTask('score');
    this.evaluation ??= await client.evaluate(taskId);
    const passes = this.evaluation.passes.length;
    const total = this.evaluation.num_tests ?? passes + this.evaluation.failures.length;
    return {
      total: total > 0 ? Math.min(1, passes / total) : this.evaluation.success ? 1 : 0,
      parts: {
        passed_all: this.evaluation.success ? 1 : 0,
        checks_passed: passes,
        checks_total: total,
        completed: this.completed ? 1 : 0,
        turns: this.turns,
        parse_errors: this.errors,
      },
    };
  }

  async close(): Promise<void> {
    const { client, taskId } = this;
    this.client = undefined;
    if (client === undefined) return;
    try {
      if (taskId !== undefined) await client.close(taskId);
    } finally {
      releaseServer(client.url);
    }
  }

  /** The code for a message, or the error observation when `calls` mode cannot parse it. */
  private codeOf(action: string): string | { error: string } {
    if (action.length > this.options.maxActionChars) {
      return {
        error: `error: the message is ${action.length} characters long; the limit is ${this.options.maxActionChars}. Nothing was run.`,
      };
    }
    if (this.options.actions === 'code') {
      const code = extractCode(action);
      return code === '' ? { error: 'error: no code found. Write Python in a ```python block.' } : code;
    }
    const parsed = parseAction(action, this.options);
    if (parsed.errors.length > 0)
      return { error: `error: ${parsed.errors.join('; ')}. Nothing was run. Write one call per line: app.api {"arg": value}.` };
    if (parsed.calls.length === 0) return { error: 'error: no API call found. Write one call per line: app.api {"arg": value}.' };
    return parsed.calls.map(callToCode).join('\n');
  }

  private requireTask(method: string): { client: AppWorldClient; taskId: string } {
    if (this.client === undefined || this.taskId === undefined)
      throw new EnvError(`appworld: ${method}() called before reset() (or after close())`);
    return { client: this.client, taskId: this.taskId };
  }
}

/** The built-in definition registered as `appworld`. */
export const appworldEnv: EnvDefinition<AppWorldOptions> = {
  name: 'appworld',
  description: 'Adapter to an AppWorld environment server over HTTP (initialize / execute / task_completed / evaluate / close).',
  optionsSchema: appworldOptionsSchema,
  taskCount: (split, options) => appworldTaskIds(options)[split]?.length ?? 0,
  create: (options) => new AppWorldEnv(options),
};
