/**
 * How an app's API is declared and run. An API has zod-validated arguments (strict: an unknown argument
 * is an error), may need an access token from the app's `login`, may be paginated (`page`, `page_size`),
 * and fails with an ApiError whose status and message read like a web service's (spec "Shape").
 */
import { z } from 'zod';
import type { World } from './world.js';

/** Largest `page_size` a paginated API accepts. */
export const MAX_PAGE_SIZE = 20;

/** A failed call: an HTTP-like status and a message that says what to do. Shown to the agent. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Per-episode state that is not part of the checked world: tokens, docs seen, completion. */
export interface Session {
  /** access token → app it was issued for. */
  readonly tokens: Map<string, string>;
  /** `app.api` names whose documentation the agent has shown this episode. */
  readonly docsShown: Set<string>;
  /** Set by `supervisor.complete_task`. */
  completed: boolean;
  /** The answer given to `supervisor.complete_task` (undefined when none). */
  answer: string | number | undefined;
}

/** A fresh session. */
export function newSession(): Session {
  return { tokens: new Map(), docsShown: new Set(), completed: false, answer: undefined };
}

/** World settings the APIs read (derived from the env options). */
export interface ApiSettings {
  /** Whether app APIs need an `access_token` from `<app>.login`. */
  readonly auth: boolean;
  /** Default `page_size` of paginated APIs. */
  readonly pageSize: number;
}

/** What an API implementation gets: the world to read and change, the session, the settings, all apps. */
export interface ApiContext {
  readonly world: World;
  readonly session: Session;
  readonly settings: ApiSettings;
  readonly apps: ReadonlyMap<string, AppDefinition>;
}

/** Pagination arguments after defaults: 0-based page, page size in [1, MAX_PAGE_SIZE]. */
export interface Paging {
  readonly page: number;
  readonly page_size: number;
}

/** One API of an app. `run` throws ApiError for a failed call and returns JSON data otherwise. */
export interface ApiDefinition {
  readonly app: string;
  readonly name: string;
  /** One line, shown by `api_docs.show_api_descriptions`. */
  readonly description: string;
  /** What a successful call returns, one line. */
  readonly returns: string;
  /** Arguments as written by the agent (with `page`/`page_size`/`access_token` where they apply). */
  readonly schema: z.ZodObject;
  /** Whether the API needs an access token (when authentication is on). */
  readonly needsToken: boolean;
  readonly paginated: boolean;
  /** Whether the API can change the world (used by the solver's slip noise and the docs). */
  readonly mutates: boolean;
  run(ctx: ApiContext, args: Record<string, unknown>): unknown;
}

/** An app: a name, a description and its APIs in documentation order. */
export interface AppDefinition {
  readonly name: string;
  readonly description: string;
  /** Whether the app has a `login` API and its other APIs need its token. */
  readonly login: boolean;
  readonly apis: ReadonlyMap<string, ApiDefinition>;
}

const accessTokenField = z.string().optional().describe("Access token from this app's login API.");
const pageField = z.number().int().min(0).optional().describe('Page to return, starting at 0.');
const pageSizeField = z.number().int().min(1).max(MAX_PAGE_SIZE).optional().describe(`Items per page (1-${MAX_PAGE_SIZE}).`);

/** Declaration of one API, before the app adds the shared arguments. */
export interface ApiSpec<Shape extends z.ZodRawShape> {
  readonly name: string;
  readonly description: string;
  readonly returns: string;
  readonly args: Shape;
  readonly paginated?: boolean;
  readonly mutates?: boolean;
  /** False for `login` itself (and for apps without login). */
  readonly needsToken?: boolean;
  run(ctx: ApiContext, args: z.output<z.ZodObject<Shape>> & Paging): unknown;
}

/**
 * An app from its API specs. Apps with `login: true` get `access_token` on every API but `login`;
 * paginated APIs get `page` and `page_size`. The token itself is checked by the executor, so an API body
 * only ever sees valid, authorised calls.
 */
export function defineApp(app: { name: string; description: string; login: boolean }, specs: ReadonlyArray<ApiSpec<any>>): AppDefinition {
  const apis = new Map<string, ApiDefinition>();
  for (const spec of specs) {
    const needsToken = app.login && (spec.needsToken ?? true);
    const shape: z.ZodRawShape = { ...spec.args };
    if (spec.paginated) Object.assign(shape, { page: pageField, page_size: pageSizeField });
    if (needsToken) Object.assign(shape, { access_token: accessTokenField });
    if (apis.has(spec.name)) throw new Error(`toolworld: app ${app.name} declares ${spec.name} twice`);
    apis.set(spec.name, {
      app: app.name,
      name: spec.name,
      description: spec.description,
      returns: spec.returns,
      schema: z.object(shape).strict(),
      needsToken,
      paginated: spec.paginated ?? false,
      mutates: spec.mutates ?? false,
      run: (ctx, args) => spec.run(ctx, withPaging(args, ctx.settings, spec.paginated ?? false)),
    });
  }
  return { name: app.name, description: app.description, login: app.login, apis };
}

function withPaging(args: Record<string, unknown>, settings: ApiSettings, paginated: boolean): any {
  if (!paginated) return args;
  return { ...args, page: args.page ?? 0, page_size: args.page_size ?? settings.pageSize };
}

/** One page of `items`: `{ items, page, next_page }`, `next_page` null on the last page (or past the end). */
export function paginate<T>(items: readonly T[], paging: Paging): { items: T[]; page: number; next_page: number | null } {
  const start = paging.page * paging.page_size;
  const slice = items.slice(start, start + paging.page_size);
  return { items: slice, page: paging.page, next_page: start + paging.page_size < items.length ? paging.page + 1 : null };
}

/** The row of `rows` with `id`, or a 404 naming the kind of thing and the id. */
export function findById<T extends { readonly id: number }>(rows: readonly T[], id: number, what: string, idName: string): T {
  const row = rows.find((r) => r.id === id);
  if (row === undefined) throw new ApiError(404, `${what} with ${idName} ${id} does not exist.`);
  return row;
}

/** Remove the row with `id` from `rows` (in place). */
export function removeById<T extends { readonly id: number }>(rows: T[], id: number): void {
  const index = rows.findIndex((r) => r.id === id);
  if (index >= 0) rows.splice(index, 1);
}

/** Case-insensitive substring test. */
export function containsText(haystack: string, needle: string): boolean {
  return haystack.toLowerCase().includes(needle.toLowerCase());
}

/** Common argument schemas, described once. */
export const fields = {
  email: z.string().regex(/^[^@\s]+@[^@\s]+\.[a-z]+$/i, 'must be an email address like name@mail.com'),
  phone: z.string().regex(/^555-\d{4}$/, 'must be a phone number like 555-0123'),
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date like 2024-05-18'),
  dateTime: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/, 'must be a date and time like 2024-05-18T14:00:00'),
  amount: z
    .number()
    .positive()
    .max(100_000)
    .refine((v) => Math.abs(v * 100 - Math.round(v * 100)) < 1e-6, 'must have at most two decimals'),
  id: z.number().int().min(1),
  text: (max: number) => z.string().min(1).max(max),
};

/**
 * Human-readable zod issues: `note_id: expected number, got string; missing argument title; unknown argument
 * titel`. Paths are argument names.
 */
export function describeArgumentIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => {
      const path = issue.path.map(String).join('.');
      if (issue.code === 'unrecognized_keys') return `unknown argument${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
      if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) return `missing argument ${path}`;
      const message = issue.message.replace(/^Invalid input: /, '');
      return path ? `${path}: ${message}` : message;
    })
    .join('; ');
}

/** Type a spec's `run` arguments from its `args` shape (used for every API so `run` is checked). */
export function api<Shape extends z.ZodRawShape>(spec: ApiSpec<Shape>): ApiSpec<any> {
  return spec;
}
