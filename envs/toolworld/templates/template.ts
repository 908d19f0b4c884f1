/**
 * What a task template is, and the helpers templates share. A template turns a freshly generated world
 * (which it may add rows to, so the task is always feasible) and a random stream into a task draft: the
 * instruction, the expected answer, the intended changes (applied with the real API code, so the checks
 * compare against exactly what a correct agent produces) and the scripted solver's plan.
 */
import type { Rng } from '../../../core/rng.js';
import { newSession, type ApiContext } from '../api.js';
import { ALL_APIS, APPS } from '../apps/index.js';
import type { Plan, SolverContext } from '../solver.js';
import { addDays, allocateId, monthName, pick, previousMonth, timeBefore, type Contact, type World } from '../world.js';
import { UNIQUE_RELATIONSHIPS } from '../vocab.js';

/** How hard a template is: 1 = one app, one lookup and one write or answer; 2 = lists, filters, several rows or two apps; 3 = compositions across apps. */
export type Level = 1 | 2 | 3;

/** `normal` templates make the train, dev and test-normal splits; `challenge` templates only test-challenge. */
export type TemplateGroup = 'normal' | 'challenge';

/** A generated task before the environment fixes its initial state. */
export interface TaskDraft {
  /** What the supervisor asks, one or two sentences. */
  readonly instruction: string;
  /** The expected answer when the task asks a question. */
  readonly answer?: string | number;
  /** Apply the intended changes to a copy of the initial world (absent for questions). */
  readonly apply?: (world: World) => void;
  /** Every `app.api` the solver calls (docs lookups and logins are derived from it). */
  readonly apis: readonly string[];
  /** The solver's plan after its preparation turns. */
  solve(s: SolverContext): Plan;
}

/** A task template. */
export interface TaskTemplate {
  readonly name: string;
  /** Data apps the task touches (supervisor and api_docs left out). */
  readonly apps: readonly string[];
  readonly level: Level;
  readonly group: TemplateGroup;
  /** An example instruction, for the documentation. */
  readonly example: string;
  /** A draft for this world, or undefined when the world cannot host the task (the caller redraws). */
  make(world: World, rng: Rng): TaskDraft | undefined;
}

/**
 * Run an API directly on a world (no token, no docs rule), with its argument defaults applied. Used to
 * apply intended changes; a failure here is a bug in the template and throws.
 */
export function invoke(world: World, name: string, args: Record<string, unknown>): any {
  const api = ALL_APIS.get(name);
  if (api === undefined) throw new Error(`toolworld template: unknown API ${name}`);
  const parsed = api.schema.parse(args) as Record<string, unknown>;
  const ctx: ApiContext = { world, session: newSession(), settings: { auth: false, pageSize: 20 }, apps: APPS };
  return api.run(ctx, parsed);
}

/** `"text"` — how instructions quote names and texts. */
export function q(text: string): string {
  return `"${text}"`;
}

/** Full name. */
export function nameOf(c: Pick<Contact, 'first_name' | 'last_name'>): string {
  return `${c.first_name} ${c.last_name}`;
}

/**
 * A contact holding a family relationship nobody else holds ("my sister"); when the world has none,
 * one contact is given a free one.
 */
export function relativeContact(world: World, rng: Rng): Contact {
  const holders = world.tables.contacts.filter((c) => UNIQUE_RELATIONSHIPS.includes(c.relationship));
  if (holders.length > 0) return pick(rng, holders);
  const free = UNIQUE_RELATIONSHIPS.filter((r) => !world.tables.contacts.some((c) => c.relationship === r));
  const contact = pick(rng, world.tables.contacts);
  contact.relationship = pick(rng, free);
  return contact;
}

/** A word from `pool` that `used` does not hold, or undefined. */
export function freshFrom(rng: Rng, pool: readonly string[], used: Iterable<string>): string | undefined {
  const taken = new Set(used);
  const left = pool.filter((w) => !taken.has(w));
  return left.length > 0 ? pick(rng, left) : undefined;
}

/** A phone number no contact has. */
export function freshPhone(world: World, rng: Rng): string {
  for (;;) {
    const phone = `555-${String(rng.int(10_000)).padStart(4, '0')}`;
    if (!world.tables.contacts.some((c) => c.phone === phone) && phone !== world.supervisor.phone) return phone;
  }
}

/** The first and last day of the month before "now", its name, and its `YYYY-MM`. */
export function lastMonth(world: World): { start: string; end: string; name: string; month: string } {
  const month = previousMonth(world.now);
  const start = `${month}-01`;
  const end = addDays(`${world.now.slice(0, 7)}-01`, -1);
  return { start, end, name: monthName(month), month };
}

/** Add a text message row. */
export function plantText(world: World, phone: string, direction: 'in' | 'out', message: string, sentAt: string): number {
  const id = allocateId(world, 'texts');
  world.tables.texts.push({ id, phone_number: phone, direction, message, sent_at: sentAt });
  return id;
}

/** Add an inbox email from `from`. */
export function plantEmail(world: World, from: string, subject: string, body: string, sentAt: string, read: boolean): number {
  const id = allocateId(world, 'emails');
  world.tables.emails.push({ id, folder: 'inbox', from, to: world.supervisor.email, subject, body, sent_at: sentAt, read });
  return id;
}

/** Add a note row. */
export function plantNote(world: World, title: string, content: string, tags: string[], createdAt: string): number {
  const id = allocateId(world, 'notes');
  world.tables.notes.push({ id, title, content, tags, created_at: createdAt, updated_at: createdAt });
  return id;
}

/** Add a sent payment. */
export function plantPayment(world: World, email: string, amount: number, category: string, createdAt: string): number {
  const id = allocateId(world, 'transactions');
  world.tables.transactions.push({ id, direction: 'sent', email, amount, category, note: '', created_at: createdAt });
  return id;
}

/** A random time within the last `days` days. */
export function recent(rng: Rng, world: World, days: number): string {
  return timeBefore(rng, world.now, days);
}
