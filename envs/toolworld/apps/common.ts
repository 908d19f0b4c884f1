/**
 * Pieces every login app shares: its `login` API (username = the supervisor's email, password from
 * `supervisor.show_account_passwords`) and the argument checks used by several apps.
 */
import { z } from 'zod';
import { ApiError, fields, type ApiSpec } from '../api.js';

/**
 * The `login` API of `app`. A token is issued per successful login and is valid for this app only; tokens
 * are numbered per episode so episodes replay exactly.
 */
export function loginApi(app: string): ApiSpec<{ username: z.ZodString; password: z.ZodString }> {
  return {
    name: 'login',
    description: `Log in to ${app} and get an access token for its other APIs.`,
    returns: '{access_token}',
    args: {
      username: z.string().min(1).describe('Your account name: your email address.'),
      password: z.string().min(1).describe(`Your ${app} password (see supervisor.show_account_passwords).`),
    },
    needsToken: false,
    run(ctx, args) {
      const { supervisor } = ctx.world;
      if (args.username.toLowerCase() !== supervisor.email) {
        throw new ApiError(401, `No ${app} account has the username ${args.username}; log in with your email address.`);
      }
      const expected = supervisor.passwords[app];
      if (args.password !== expected) {
        throw new ApiError(
          401,
          `Wrong password for ${args.username} on ${app}; passwords are listed by supervisor.show_account_passwords.`,
        );
      }
      const token = `${app.slice(0, 2)}${ctx.session.tokens.size + 1}${expected.slice(0, 3)}`;
      ctx.session.tokens.set(token, app);
      return { access_token: token };
    },
  };
}

/** At least one of `keys` must be present in `args`, else a 422 naming them. */
export function requireSomeField(args: object, keys: readonly string[]): void {
  if (!keys.some((k) => (args as Record<string, unknown>)[k] !== undefined))
    throw new ApiError(422, `Nothing to change: give at least one of ${keys.join(', ')}.`);
}

/** Optional date-range filter arguments, shared by list APIs. */
export const dateRange = {
  start_date: fields.date.optional().describe('Only items on or after this date (YYYY-MM-DD).'),
  end_date: fields.date.optional().describe('Only items on or before this date (YYYY-MM-DD).'),
};

/** True when the date part of `iso` lies in [start, end] (each bound optional, inclusive). */
export function inDateRange(iso: string, start: string | undefined, end: string | undefined): boolean {
  const day = iso.slice(0, 10);
  return (start === undefined || day >= start) && (end === undefined || day <= end);
}

/** Newest first by a timestamp field, ties by id descending. */
export function newestFirst<T extends { readonly id: number }>(rows: readonly T[], key: (row: T) => string): T[] {
  return [...rows].sort((a, b) => (key(a) === key(b) ? b.id - a.id : key(a) < key(b) ? 1 : -1));
}
