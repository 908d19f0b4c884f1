/** Shared fixtures of the toolworld tests: a world, a session, and calling an API the way the env does. */
import { newSession, type ApiContext } from '../../../envs/toolworld/api.js';
import { APPS } from '../../../envs/toolworld/apps/index.js';
import { executeCall, type CallOutcome } from '../../../envs/toolworld/executor.js';
import { generateWorld, type World, type WorldSize } from '../../../envs/toolworld/world.js';

/** A context over a fresh world of `size` generated from `seed`. */
export function makeContext(options: { seed?: number; size?: WorldSize; auth?: boolean; pageSize?: number } = {}): ApiContext {
  return {
    world: generateWorld(options.seed ?? 7, options.size ?? 'small'),
    session: newSession(),
    settings: { auth: options.auth ?? true, pageSize: options.pageSize ?? 5 },
    apps: APPS,
  };
}

/** Run `app.api` with `args` (no docs rule). */
export function callApi(ctx: ApiContext, name: string, args: Record<string, unknown> = {}, docsEnforced = false): CallOutcome {
  const [app, api] = name.split('.');
  return executeCall(ctx, { app, api, args }, { docsEnforced });
}

/** Log in to `app` and return the token. */
export function login(ctx: ApiContext, app: string): string {
  const outcome = callApi(ctx, `${app}.login`, { username: ctx.world.supervisor.email, password: ctx.world.supervisor.passwords[app] });
  if (!outcome.ok) throw new Error(`login to ${app} failed: ${outcome.error}`);
  return (outcome.value as { access_token: string }).access_token;
}

/** The value of a call that must succeed. */
export function ok<T = any>(outcome: CallOutcome): T {
  if (!outcome.ok) throw new Error(`${outcome.call.app}.${outcome.call.api} failed: ${outcome.status} ${outcome.error}`);
  return outcome.value as T;
}

/** The status and message of a call that must fail. */
export function failed(outcome: CallOutcome): { status: number; error: string } {
  if (outcome.ok) throw new Error(`${outcome.call.app}.${outcome.call.api} succeeded: ${JSON.stringify(outcome.value)}`);
  return { status: outcome.status, error: outcome.error };
}

/** A world's first row of a table satisfying `pred`. */
export function first<T>(rows: readonly T[], pred: (row: T) => boolean = () => true): T {
  const row = rows.find(pred);
  if (row === undefined) throw new Error('fixture world lacks a row');
  return row;
}

export type { World };
