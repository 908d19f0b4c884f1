/**
 * The scripted solver: plays a task through the real environment the way a careful agent would — reads
 * the documentation of every API it will use, gets the passwords and logs in, pages through lists until
 * it has what it needs, makes the changes and completes the task — so its episodes are SFT
 * demonstrations and its score is an upper reference. Each template's plan is a generator that yields
 * one message (a list of calls) per turn and receives that turn's outcomes.
 *
 * Noise (for imperfect demonstrations):
 * - `mistake` (probability per decision point, at most one per episode): a pick among candidates takes a
 *   wrong one, an answer is given wrong, or a value copied from the task is altered — the episode then
 *   fails some checks;
 * - `slip` (probability per episode): one write call is first sent with an argument missing, the error
 *   is read, and the call is repeated correctly — a harmless detour that shows error recovery.
 */
import type { Rng } from '../../core/rng.js';
import { ALL_APIS } from './apps/index.js';
import type { CallOutcome } from './executor.js';
import type { ParsedCall } from './parser.js';

/** One turn of a plan: the calls of one message. */
export type Turn = readonly ParsedCall[];

/** A plan: yields turns, receives each turn's outcomes (one per call that ran). */
export type Plan<T = void> = Generator<Turn, T, CallOutcome[]>;

/** How the solver talks to the world. */
export interface SolverSettings {
  /** Look up `api_docs.show_api_doc` for each API before first use. */
  readonly lookupDocs: boolean;
  /** Log in (passwords from the supervisor) before using an app. */
  readonly auth: boolean;
  /** Most calls the solver puts in one message (the environment's `maxCallsPerTurn`). */
  readonly maxCallsPerTurn: number;
}

/** Noise of the demonstrations; both 0 gives the clean upper-reference solver. */
export interface SolverNoise {
  readonly mistake: number;
  readonly slip: number;
}

/** The solver hit something its plan did not expect (a failed call it cannot recover from). */
export class SolverStuck extends Error {}

/** A call value. */
export function call(app: string, api: string, args: Record<string, unknown> = {}): ParsedCall {
  return { app, api, args };
}

/**
 * Helpers a template's plan composes. Every helper that talks to the world is a generator to delegate to
 * with `yield*`.
 */
export class SolverContext {
  private readonly tokens = new Map<string, string>();
  private passwords: Record<string, string> | undefined;
  private readonly documented = new Set<string>();
  private mistakeMade = false;
  private slipLeft: boolean;
  constructor(
    private readonly settings: SolverSettings,
    private readonly noise: SolverNoise,
    private readonly rng: Rng,
    private readonly username: string,
  ) {
    this.slipLeft = rng.next() < noise.slip;
  }

  /** Whether a harmful mistake was made in this episode. */
  get mistaken(): boolean {
    return this.mistakeMade;
  }

  /**
   * The opening a careful agent makes: the API descriptions of every app it needs and the passwords in
   * one turn, then the docs of every API it will call and the logins in the next. Either turn is left
   * out when the settings make it unnecessary.
   */
  *prepare(apis: readonly string[]): Plan {
    const apps = [...new Set(apis.map((a) => a.split('.')[0]))].filter((app) => app !== 'supervisor');
    const first: ParsedCall[] = [];
    if (this.settings.lookupDocs) for (const app of apps) first.push(call('api_docs', 'show_api_descriptions', { app_name: app }));
    if (this.settings.auth && this.passwords === undefined) first.push(call('supervisor', 'show_account_passwords'));
    if (first.length > 0) {
      const outcomes = yield* this.send(first);
      const passwords = outcomes.find((o) => o.call.api === 'show_account_passwords');
      if (passwords?.ok) {
        this.passwords = Object.fromEntries((passwords.value as Array<{ app: string; password: string }>).map((p) => [p.app, p.password]));
      }
      this.requireAllOk(outcomes, first.length);
    }
    const second: ParsedCall[] = [];
    if (this.settings.lookupDocs) {
      for (const name of apis) {
        const [app, api] = name.split('.');
        if (app === 'supervisor' || this.documented.has(name)) continue;
        second.push(call('api_docs', 'show_api_doc', { app_name: app, api_name: api }));
        this.documented.add(name);
      }
    }
    const logins = this.settings.auth ? apps.filter((app) => !this.tokens.has(app)) : [];
    for (const app of logins) second.push(call(app, 'login', { username: this.username, password: this.passwords?.[app] ?? '' }));
    if (second.length > 0) {
      const outcomes = yield* this.send(second);
      this.requireAllOk(outcomes, second.length);
      for (const outcome of outcomes) {
        if (outcome.ok && outcome.call.api === 'login')
          this.tokens.set(outcome.call.app, (outcome.value as { access_token: string }).access_token);
      }
    }
  }

  /** `args` plus the app's token when logins are on (the token goes last, as written by hand). */
  withToken(app: string, args: Record<string, unknown>): Record<string, unknown> {
    const token = this.settings.auth ? this.tokens.get(app) : undefined;
    return token === undefined || app === 'supervisor' || app === 'api_docs' ? args : { ...args, access_token: token };
  }

  /** A call of an app API with the token added. */
  api(app: string, api: string, args: Record<string, unknown> = {}): ParsedCall {
    return call(app, api, this.withToken(app, args));
  }

  /** One call in its own turn; returns its value (a failure is SolverStuck). */
  *get<T = unknown>(app: string, api: string, args: Record<string, unknown> = {}): Plan<T> {
    const outcomes = yield [this.api(app, api, args)];
    const outcome = outcomes[0];
    if (!outcome?.ok) throw new SolverStuck(`${app}.${api} failed: ${outcome && !outcome.ok ? outcome.error : 'not run'}`);
    return outcome.value as T;
  }

  /**
   * Every item of a paginated list, page by page (one turn each) until `next_page` is null — or, when
   * `enough` is given, until an item satisfies it (a careful agent stops paging once it has what it needs).
   */
  *listAll<T>(app: string, api: string, args: Record<string, unknown> = {}, enough?: (item: T) => boolean): Plan<T[]> {
    const items: T[] = [];
    for (let page = 0; ; page++) {
      const pageArgs = page === 0 ? { ...args } : { ...args, page };
      const result = yield* this.get<{ items: T[]; next_page: number | null }>(app, api, pageArgs);
      items.push(...result.items);
      if (result.next_page === null || (enough !== undefined && result.items.some(enough))) return items;
    }
  }

  /** A decision point: true when the (single) harmful mistake of this episode strikes here. */
  private strikes(): boolean {
    if (this.mistakeMade || this.noise.mistake <= 0) return false;
    if (this.rng.next() < this.noise.mistake) {
      this.mistakeMade = true;
      return true;
    }
    return false;
  }

  /** The item satisfying `matches` (SolverStuck if none) — or, when a mistake strikes, another item. */
  choose<T>(items: readonly T[], matches: (item: T) => boolean): T {
    const right = items.find(matches);
    if (right === undefined) throw new SolverStuck('the item the task names was not found');
    if (this.strikes()) {
      const wrong = items.filter((item) => !matches(item));
      if (wrong.length > 0) return wrong[this.rng.int(wrong.length)];
    }
    return right;
  }

  /** The items satisfying `matches` — or, when a mistake strikes, one of them is left out. */
  chooseAll<T>(items: readonly T[], matches: (item: T) => boolean): T[] {
    const right = items.filter(matches);
    if (right.length > 0 && this.strikes()) right.splice(this.rng.int(right.length), 1);
    return right;
  }

  /** A value copied from the task; a mistake alters it (a text loses its last character, a number is off by one). */
  copy<T extends string | number>(value: T): T {
    if (!this.strikes()) return value;
    if (typeof value === 'number') return (value + 1) as T;
    return (value.length > 1 ? value.slice(0, -1) : `${value}x`) as T;
  }

  /**
   * Send calls in as few messages as `maxCallsPerTurn` allows (one turn each); returns every outcome.
   * A message stops at its first failure, so later calls of that message have no outcome.
   */
  *send(calls: readonly ParsedCall[]): Plan<CallOutcome[]> {
    const outcomes: CallOutcome[] = [];
    for (let i = 0; i < calls.length; i += this.settings.maxCallsPerTurn) {
      outcomes.push(...(yield calls.slice(i, i + this.settings.maxCallsPerTurn)));
    }
    return outcomes;
  }

  /**
   * The last turn: the final writes and `supervisor.complete_task` together (writes that do not fit in
   * one message go in messages before it). If a write fails the completion does not run; the solver then
   * completes on its own. A slip first sends the first write without one of its required arguments.
   */
  *finish(writes: readonly ParsedCall[], answer?: string | number): Plan {
    if (this.slipLeft && writes.length > 0) {
      this.slipLeft = false;
      const first = writes[0];
      const schema = ALL_APIS.get(`${first.app}.${first.api}`)?.schema;
      const required = Object.keys(first.args).find(
        (key) => schema !== undefined && key in schema.shape && !schema.shape[key].safeParse(undefined).success,
      );
      if (required !== undefined) {
        const { [required]: _omitted, ...rest } = first.args;
        yield [call(first.app, first.api, rest)];
      }
    }
    const complete = call('supervisor', 'complete_task', answer === undefined ? {} : { answer: this.copy(answer) });
    const room = this.settings.maxCallsPerTurn - 1;
    const early = room > 0 ? writes.length - Math.min(writes.length, room) : writes.length;
    if (early > 0) yield* this.send(writes.slice(0, early));
    const outcomes = yield [...writes.slice(early), complete];
    const done = outcomes.some((o) => o.ok && o.call.api === 'complete_task');
    const refused = outcomes.some((o) => !o.ok && o.call.api === 'complete_task');
    if (!done && !refused) yield [complete];
  }

  private requireAllOk(outcomes: CallOutcome[], expected: number): void {
    const failed = outcomes.find((o) => !o.ok);
    if (failed && !failed.ok) throw new SolverStuck(`${failed.call.app}.${failed.call.api} failed: ${failed.error}`);
    if (outcomes.length < expected) throw new SolverStuck('a preparation call did not run');
  }
}
