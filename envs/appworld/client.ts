/**
 * HTTP client of an AppWorld environment server (`appworld serve environment`), written against the
 * protocol its Python client uses: every method is `POST <url>/<method>` with a JSON body that carries
 * `task_id` (and the method's arguments), and every answer is `{"output": …}`:
 *
 *   /initialize      {task_id, experiment_name}         → output {task_id, instruction, supervisor, datetime}
 *   /execute         {task_id, code}                    → output: the printed text (a string)
 *   /task_completed  {task_id}                          → output: boolean
 *   /evaluate        {task_id, suppress_errors: true}   → output {success, passes, failures, num_tests?}
 *   /close           {task_id}                          → output: null
 *
 * Every response is validated with zod; a network failure is retried with backoff and then reported as
 * a retryable EnvError; an HTTP error status or an unexpected body is an EnvError naming the URL, the
 * method and what came back. This adapter has not been run against a real AppWorld server (only against
 * the fake one in test/unit/appworld/).
 */
import { z } from 'zod';
import { EnvError } from '../../core/errors.js';

/** The supervisor as /initialize returns it (extra fields kept). */
export const SupervisorSchema = z
  .object({
    first_name: z.string(),
    last_name: z.string(),
    email: z.string(),
    phone_number: z.string().optional(),
  })
  .passthrough();

/** output of /initialize. */
export const InitializeOutputSchema = z
  .object({
    task_id: z.string().optional(),
    instruction: z.string().min(1),
    supervisor: SupervisorSchema,
    datetime: z.string().optional(),
  })
  .passthrough();

/** One entry of `passes` / `failures`: AppWorld reports requirement records; plain strings are accepted too. */
const TestEntrySchema = z.union([z.string(), z.record(z.string(), z.unknown())]);

/** output of /evaluate (AppWorld's test tracker as a dict; `fails` is accepted as an alias of `failures`). */
export const EvaluateOutputSchema = z
  .object({
    success: z.boolean(),
    passes: z.array(TestEntrySchema).default([]),
    failures: z.array(TestEntrySchema).optional(),
    fails: z.array(TestEntrySchema).optional(),
    num_tests: z.number().int().min(0).optional(),
  })
  .passthrough()
  .transform(({ failures, fails, ...rest }) => ({ ...rest, failures: failures ?? fails ?? [] }));

/** Parsed /initialize output. */
export type InitializeOutput = z.output<typeof InitializeOutputSchema>;
/** Parsed /evaluate output. */
export type EvaluateOutput = z.output<typeof EvaluateOutputSchema>;

/** Transport settings. */
export interface AppWorldClientOptions {
  /** Per-request timeout, ms. */
  readonly timeoutMs: number;
  /** Extra attempts after a network failure (not after an HTTP error status). */
  readonly retries: number;
  /** First backoff, ms (doubles per retry). */
  readonly backoffMs: number;
}

const envelope = <T extends z.ZodType>(output: T) => z.object({ output }).passthrough();

/** Talks to one server URL. Stateless apart from the URL; the task id is passed to every call. */
export class AppWorldClient {
  constructor(
    readonly url: string,
    private readonly options: AppWorldClientOptions,
  ) {}

  /** Start `taskId` on the server; returns its instruction and supervisor. */
  async initialize(taskId: string, experimentName: string): Promise<InitializeOutput> {
    return this.post('initialize', { task_id: taskId, experiment_name: experimentName }, InitializeOutputSchema);
  }

  /** Run code in the task's environment; returns what it printed. */
  async execute(taskId: string, code: string): Promise<string> {
    return this.post('execute', { task_id: taskId, code }, z.string());
  }

  /** Whether the agent has called `apis.supervisor.complete_task`. */
  async taskCompleted(taskId: string): Promise<boolean> {
    return this.post('task_completed', { task_id: taskId }, z.boolean());
  }

  /** Run the task's tests (errors suppressed: a failed test is a result, not a server error). */
  async evaluate(taskId: string): Promise<EvaluateOutput> {
    return this.post('evaluate', { task_id: taskId, suppress_errors: true }, EvaluateOutputSchema);
  }

  /** Release the task on the server. */
  async close(taskId: string): Promise<void> {
    await this.post('close', { task_id: taskId }, z.unknown());
  }

  private async post<T extends z.ZodType>(method: string, body: Record<string, unknown>, output: T): Promise<z.output<T>> {
    const endpoint = `${this.url.replace(/\/+$/, '')}/${method}`;
    const response = await this.send(endpoint, method, JSON.stringify(body));
    const text = await response.text();
    if (!response.ok) {
      throw new EnvError(`AppWorld server ${this.url} answered HTTP ${response.status} to POST /${method}: ${snippet(text)}`, {
        context: { url: this.url, method, status: response.status },
      });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new EnvError(`AppWorld server ${this.url} sent a body that is not JSON for POST /${method}: ${snippet(text)}`, {
        context: { url: this.url, method },
      });
    }
    const parsed = envelope(output).safeParse(json);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(body)'}: ${i.message}`).join('; ');
      throw new EnvError(
        `unexpected response of AppWorld server ${this.url} to POST /${method} (${issues}); the adapter expects the environment-server protocol {"output": …} described in docs/toolworld.md`,
        { context: { url: this.url, method } },
      );
    }
    return parsed.data.output as z.output<T>;
  }

  /** fetch with a timeout, retrying network failures with exponential backoff. */
  private async send(endpoint: string, method: string, body: string): Promise<Response> {
    let lastError: unknown;
    for (let attempt = 0; attempt <= this.options.retries; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, this.options.backoffMs * 2 ** (attempt - 1)));
      try {
        return await fetch(endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(this.options.timeoutMs),
        });
      } catch (err) {
        lastError = err;
      }
    }
    const timedOut = lastError instanceof Error && (lastError.name === 'TimeoutError' || lastError.name === 'AbortError');
    const reason = timedOut ? `no answer within ${this.options.timeoutMs} ms` : describeCause(lastError);
    throw new EnvError(
      `AppWorld server ${this.url} unreachable for POST /${method} after ${this.options.retries + 1} attempt(s): ${reason}; is \`appworld serve environment\` running there?`,
      { cause: lastError, context: { url: this.url, method } },
    );
  }
}

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 300 ? `${flat.slice(0, 300)}...` : flat || '(empty body)';
}

function describeCause(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as Error & { cause?: unknown }).cause;
  return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
}
