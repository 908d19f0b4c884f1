/**
 * Running parsed calls against a world and writing the observation (spec "Actions", "Observation").
 * Calls of one message run in order and stop at the first failure (like an exception in a code block);
 * the remaining calls are reported as not run. Every failure — unknown app or API, invalid arguments,
 * missing or wrong token, a documentation lookup the world requires, an error of the API itself — is an
 * outcome with a status and a message, never an exception.
 */
import { ApiError, describeArgumentIssues, type ApiContext } from './api.js';
import type { ParsedCall } from './parser.js';

/** The result of one call. */
export type CallOutcome =
  | { readonly call: ParsedCall; readonly ok: true; readonly value: unknown }
  | { readonly call: ParsedCall; readonly ok: false; readonly status: number; readonly error: string };

/** Rules of the world that the executor enforces. */
export interface ExecutionRules {
  /** An app API may only be called after `api_docs.show_api_doc` showed it this episode (login exempt). */
  readonly docsEnforced: boolean;
}

function failure(call: ParsedCall, status: number, error: string): CallOutcome {
  return { call, ok: false, status, error };
}

/** Run one call. Only a bug in an API implementation can throw (it is not an ApiError). */
export function executeCall(ctx: ApiContext, call: ParsedCall, rules: ExecutionRules): CallOutcome {
  const app = ctx.apps.get(call.app);
  if (app === undefined) {
    return failure(call, 404, `No app named ${call.app}; apps: ${[...ctx.apps.keys()].join(', ')}.`);
  }
  const api = app.apis.get(call.api);
  if (api === undefined) {
    return failure(
      call,
      404,
      `App ${app.name} has no API named ${call.api}; see api_docs.show_api_descriptions {"app_name":"${app.name}"}.`,
    );
  }
  if (rules.docsEnforced && app.login && api.name !== 'login' && !ctx.session.docsShown.has(`${app.name}.${api.name}`)) {
    return failure(
      call,
      403,
      `Read the documentation before calling ${app.name}.${api.name}: api_docs.show_api_doc {"app_name":"${app.name}","api_name":"${api.name}"}.`,
    );
  }
  const parsed = api.schema.safeParse(call.args);
  if (!parsed.success) {
    return failure(call, 422, `Invalid arguments for ${app.name}.${api.name}: ${describeArgumentIssues(parsed.error.issues)}.`);
  }
  const args = parsed.data as Record<string, unknown>;
  if (api.needsToken && ctx.settings.auth) {
    const token = args.access_token;
    if (token === undefined) {
      return failure(call, 401, `${app.name}.${api.name} needs an access_token: log in with ${app.name}.login first.`);
    }
    const owner = ctx.session.tokens.get(token as string);
    if (owner === undefined) return failure(call, 401, `The access_token is not valid; log in with ${app.name}.login.`);
    if (owner !== app.name) return failure(call, 401, `The access_token is for ${owner}, not ${app.name}; log in with ${app.name}.login.`);
  }
  try {
    return { call, ok: true, value: api.run(ctx, args) };
  } catch (err) {
    if (err instanceof ApiError) return failure(call, err.status, err.message);
    throw err;
  }
}

/** Outcomes of a message's calls, in order, stopping after the first failure. */
export interface TurnOutcome {
  readonly outcomes: CallOutcome[];
  /** Calls after a failure that were not run. */
  readonly skipped: number;
}

/** Run a message's calls in order until one fails (or `supervisor.complete_task` succeeds). */
export function executeCalls(ctx: ApiContext, calls: readonly ParsedCall[], rules: ExecutionRules): TurnOutcome {
  const outcomes: CallOutcome[] = [];
  for (let i = 0; i < calls.length; i++) {
    const outcome = executeCall(ctx, calls[i], rules);
    outcomes.push(outcome);
    if (!outcome.ok || ctx.session.completed) return { outcomes, skipped: calls.length - i - 1 };
  }
  return { outcomes, skipped: 0 };
}

/** Caps on what one observation shows, in characters. */
export interface ObservationLimits {
  /** One call's result longer than this is cut, with a note. */
  readonly maxResultChars: number;
  /** The whole observation longer than this is cut, with a note. */
  readonly maxObservationChars: number;
}

/** `text` cut to `max` characters with a note saying how much was left out (the note fits within `max`). */
export function truncateWithNote(text: string, max: number, hint: string): string {
  if (text.length <= max) return text;
  const note = (dropped: number) => `...[truncated: ${dropped} more characters${hint}]`;
  const keep = Math.max(0, max - note(text.length).length);
  return `${text.slice(0, keep)}${note(text.length - keep)}`;
}

/**
 * The text of one outcome: `app.api: <compact JSON>` or `app.api: error 404: <message>`, with a long
 * result cut to `maxResultChars`.
 */
export function renderOutcome(outcome: CallOutcome, limits: ObservationLimits): string {
  const name = `${outcome.call.app}.${outcome.call.api}`;
  if (!outcome.ok) return `${name}: error ${outcome.status}: ${outcome.error}`;
  const json = JSON.stringify(outcome.value) ?? 'null';
  return `${name}: ${truncateWithNote(json, limits.maxResultChars, '; ask for less: page_size, a filter, or one item')}`;
}

/** The observation for a turn's outcomes (one line per call, then the not-run note). */
export function renderTurn(turn: TurnOutcome, limits: ObservationLimits): string {
  const lines = turn.outcomes.map((o) => renderOutcome(o, limits));
  if (turn.skipped > 0) lines.push(`(${turn.skipped} later call${turn.skipped > 1 ? 's' : ''} not run because of the error)`);
  return lines.join('\n');
}
