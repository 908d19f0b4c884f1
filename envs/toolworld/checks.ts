/**
 * A task's checks (spec "Reward"): the requested changes were made, nothing extraneous changed, and the
 * answer is right when the task asks for one. A template states the intended changes by applying them
 * to a copy of the initial world (with the same API code the agent calls); the checks are derived from
 * the difference between that copy and the initial world, and run on the final world of the episode.
 *
 * - one check per expected row change: `updated notes#3` (the row equals the intended one),
 *   `deleted notes#3` (the row is gone), `created notes` (a new row equal to the intended one, ids
 *   ignored; each new row satisfies at most one such check);
 * - `answer` when the task asks a question: complete_task was called with an answer equal to the expected
 *   one (numbers within half a cent; text case- and space-insensitive, a trailing period ignored);
 * - `nothing_extraneous`: every row outside the intended changes is as it was, and no unintended row was
 *   added. It passes only when at least one other check passes, so an agent that does nothing passes no
 *   check at all (an idle agent would otherwise be rewarded for the harm it did not do).
 *
 * Rows compare after normalisation: keys sorted, strings trimmed, lists of strings as sets, numbers to
 * cents.
 */
import { TABLE_NAMES, type TableName, type World } from './world.js';

/** One expected change of a row. */
export type ExpectedChange =
  | { readonly kind: 'update'; readonly table: TableName; readonly id: number; readonly row: string }
  | { readonly kind: 'delete'; readonly table: TableName; readonly id: number }
  | { readonly kind: 'create'; readonly table: TableName; readonly row: string };

/** What a task's checks need, fixed when the task is generated. */
export interface TaskExpectation {
  readonly changes: readonly ExpectedChange[];
  /** The expected answer; absent when the task asks no question. */
  readonly answer?: string | number;
}

/** The outcome of one check. */
export interface CheckResult {
  readonly name: string;
  readonly passed: boolean;
}

function normalize(value: unknown): unknown {
  if (typeof value === 'string') return value.trim();
  if (typeof value === 'number') return Math.round(value * 100) / 100;
  if (Array.isArray(value)) {
    const items = value.map(normalize);
    return items.every((v) => typeof v === 'string') ? [...new Set(items as string[])].sort() : items;
  }
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = normalize((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

/** Canonical text of a row, with or without its id. */
export function canonicalRow(row: { readonly id: number }, withId = true): string {
  if (withId) return JSON.stringify(normalize(row));
  const { id: _id, ...rest } = row;
  return JSON.stringify(normalize(rest));
}

function rowsById(world: World, table: TableName): Map<number, string> {
  const out = new Map<number, string>();
  for (const row of world.tables[table] as ReadonlyArray<{ id: number }>) out.set(row.id, canonicalRow(row));
  return out;
}

/**
 * Canonical rows of an initial world, computed once per world object: an initial world is never changed
 * once a task is generated from it (episodes work on a copy), and every score compares against it.
 */
const initialCache = new WeakMap<World, ReadonlyMap<TableName, Map<number, string>>>();

function initialRowsOf(world: World): ReadonlyMap<TableName, Map<number, string>> {
  let rows = initialCache.get(world);
  if (rows === undefined) {
    rows = new Map(TABLE_NAMES.map((t) => [t, rowsById(world, t)] as const));
    initialCache.set(world, rows);
  }
  return rows;
}

/**
 * The row changes that turn `initial` into `expected`, table by table in TABLE_NAMES order. `initial`
 * must not change afterwards (its canonical rows are cached).
 */
export function expectedChanges(initial: World, expected: World): ExpectedChange[] {
  const changes: ExpectedChange[] = [];
  const initialRows = initialRowsOf(initial);
  for (const table of TABLE_NAMES) {
    const before = initialRows.get(table)!;
    const after = rowsById(expected, table);
    for (const [id, row] of before) {
      const next = after.get(id);
      if (next === undefined) changes.push({ kind: 'delete', table, id });
      else if (next !== row) changes.push({ kind: 'update', table, id, row: next });
    }
    for (const row of expected.tables[table] as ReadonlyArray<{ id: number }>) {
      if (!before.has(row.id)) changes.push({ kind: 'create', table, row: canonicalRow(row, false) });
    }
  }
  return changes;
}

/** Normalised text answer: lower case, single spaces, no surrounding quotes or trailing period. */
function normalizeAnswer(text: string): string {
  return text
    .trim()
    .replace(/^["']|["']$/g, '')
    .replace(/\.$/, '')
    .replace(/\s+/g, ' ')
    .trim()
    .toLowerCase();
}

/** Whether `given` matches `expected` (see the module comment for the rules). */
export function answersMatch(given: string | number | undefined, expected: string | number): boolean {
  if (given === undefined) return false;
  if (typeof expected === 'number') {
    let value = given as number;
    if (typeof given === 'string') {
      const text = given.trim().replace(/^\$/, '').replace(/,/g, '');
      if (text === '') return false;
      value = Number(text);
    }
    return Number.isFinite(value) && Math.abs(value - expected) < 0.005;
  }
  return normalizeAnswer(String(given)) === normalizeAnswer(expected);
}

/**
 * Run the checks of a task on the final world (`initial` unchanged since the task was generated).
 * `completed`/`answer` come from the episode's `supervisor.complete_task` call. The result lists change checks in expectation order, then `answer`,
 * then `nothing_extraneous`.
 */
export function runChecks(
  expectation: TaskExpectation,
  initial: World,
  final: World,
  episode: { readonly completed: boolean; readonly answer: string | number | undefined },
): CheckResult[] {
  const results: CheckResult[] = [];
  const finalRows = new Map(TABLE_NAMES.map((t) => [t, rowsById(final, t)] as const));
  const initialRows = initialRowsOf(initial);
  const allowed = new Set<string>();
  // New rows of the final world, per table, not yet matched to an expected creation.
  const unmatchedNew = new Map<TableName, Map<number, string>>();
  for (const table of TABLE_NAMES) {
    const fresh = new Map<number, string>();
    for (const row of final.tables[table] as ReadonlyArray<{ id: number }>) {
      if (!initialRows.get(table)!.has(row.id)) fresh.set(row.id, canonicalRow(row, false));
    }
    unmatchedNew.set(table, fresh);
  }
  for (const change of expectation.changes) {
    if (change.kind === 'update') {
      allowed.add(`${change.table}#${change.id}`);
      results.push({ name: `updated ${change.table}#${change.id}`, passed: finalRows.get(change.table)!.get(change.id) === change.row });
    } else if (change.kind === 'delete') {
      allowed.add(`${change.table}#${change.id}`);
      results.push({ name: `deleted ${change.table}#${change.id}`, passed: !finalRows.get(change.table)!.has(change.id) });
    } else {
      const fresh = unmatchedNew.get(change.table)!;
      let matched: number | undefined;
      for (const [id, row] of fresh) {
        if (row === change.row) {
          matched = id;
          break;
        }
      }
      if (matched !== undefined) fresh.delete(matched);
      results.push({ name: `created ${change.table}`, passed: matched !== undefined });
    }
  }
  if (expectation.answer !== undefined) {
    results.push({ name: 'answer', passed: episode.completed && answersMatch(episode.answer, expectation.answer) });
  }
  let extraneous = false;
  for (const table of TABLE_NAMES) {
    if ((unmatchedNew.get(table)?.size ?? 0) > 0) extraneous = true;
    const after = finalRows.get(table)!;
    for (const [id, row] of initialRows.get(table)!) {
      if (allowed.has(`${table}#${id}`)) continue;
      if (after.get(id) !== row) extraneous = true;
    }
  }
  const anyGoal = results.some((r) => r.passed);
  results.push({ name: 'nothing_extraneous', passed: anyGoal && !extraneous });
  return results;
}
