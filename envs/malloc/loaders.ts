/**
 * Bring-your-own allocation problems: MiniMalloc-format CSV (`id,lower,upper,size`) and JSON programs
 * with instruction compute times and accesses. Both are validated at the boundary (zod, then
 * `compileProgram`); errors are ConfigErrors that name the file, the line or field, and the fix.
 */
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../../core/errors.js';
import { compileProgram } from './program.js';
import type { CompiledProgram, MallocProgram } from './types.js';

// ─── JSON programs ──────────────────────────────────────────────────────────────────────────────────

const wholeBytes = (what: string) => z.number().int(`${what} must be a whole number`).min(1, `${what} must be ≥ 1`);

/** Schema of a JSON program file (see docs/mallocmuzero.md, "File formats"). */
export const MallocProgramSchema = z
  .object({
    name: z.string().min(1),
    memory: z
      .object({
        fastCapacity: wholeBytes('fastCapacity (bytes)'),
        alignment: wholeBytes('alignment (bytes)').default(1),
        fastBandwidth: z.number().positive('fastBandwidth (bytes per time unit) must be > 0'),
        slowBandwidth: z.number().positive('slowBandwidth (bytes per time unit) must be > 0'),
      })
      .strict(),
    buffers: z
      .array(
        z
          .object({
            id: z.string().min(1),
            size: wholeBytes('size (bytes)'),
            start: z.number().int().min(0).optional(),
            end: z.number().int().min(1).optional(),
          })
          .strict(),
      )
      .min(1, 'a program needs at least one buffer'),
    instructions: z
      .array(
        z
          .object({
            name: z.string().optional(),
            computeTime: z.number().min(0, 'computeTime must be ≥ 0'),
            weight: z.number().min(0).optional(),
            accesses: z.array(z.object({ buffer: z.string().min(1), bytes: z.number().int().min(0).optional() }).strict()),
          })
          .strict(),
      )
      .min(1, 'a program needs at least one instruction'),
  })
  .strict();

/**
 * Parse and validate a JSON program. `source` names the file in messages. Throws ConfigError for
 * invalid JSON, a schema violation (`program.json: instructions[2].accesses[0].bytes: …`) or a semantic
 * problem (unknown buffer id, live range not covering an access, …).
 */
export function parseProgramJson(text: string, source = 'program'): MallocProgram {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${source}: not valid JSON (${(err as Error).message})`, { cause: err, context: { source } });
  }
  const parsed = MallocProgramSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`${source}: ${formatPath(issue.path) || '(top level)'}: ${issue.message}`, {
      context: { source, path: issue.path },
    });
  }
  const program = parsed.data as MallocProgram;
  try {
    compileProgram(program);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${source}: ${err.message}`, { cause: err, context: { source } });
    throw err;
  }
  return program;
}

/**
 * A program as JSON text in a stable layout: one line per buffer and per instruction, so files diff
 * well and regenerate byte for byte.
 */
export function programToJson(program: MallocProgram): string {
  const lines = [
    '{',
    `  "name": ${JSON.stringify(program.name)},`,
    `  "memory": ${JSON.stringify({ fastCapacity: program.memory.fastCapacity, alignment: program.memory.alignment, fastBandwidth: program.memory.fastBandwidth, slowBandwidth: program.memory.slowBandwidth })},`,
    '  "buffers": [',
    program.buffers.map((b) => `    ${JSON.stringify(b)}`).join(',\n'),
    '  ],',
    '  "instructions": [',
    program.instructions.map((i) => `    ${JSON.stringify(i)}`).join(',\n'),
    '  ]',
    '}',
  ];
  return `${lines.join('\n')}\n`;
}

// ─── MiniMalloc CSV ─────────────────────────────────────────────────────────────────────────────────

/**
 * How a MiniMalloc CSV becomes a program. The CSV has only live ranges and sizes, so the cost model is
 * filled in (documented default):
 *  - time is compressed: the distinct `lower`/`upper` values, sorted, delimit the instructions, so
 *    instruction t covers [p_t, p_{t+1}) and overlaps are preserved exactly;
 *  - each buffer is written (size bytes) by the instruction that starts its live range and read (size
 *    bytes) by the one that ends it;
 *  - instructions have compute time `computeTime` (default 0: memory-bound) and weight 1;
 *  - fast capacity `fastCapacity`, else `capacityFraction` (default 0.5) × peak live bytes.
 */
export const MiniMallocCsvOptionsSchema = z
  .object({
    name: z.string().min(1).optional(),
    fastCapacity: z.number().int().min(1).optional(),
    capacityFraction: z.number().gt(0).max(1).default(0.5),
    alignment: z.number().int().min(1).default(1),
    fastBandwidth: z.number().positive().default(8000),
    slowBandwidth: z.number().positive().default(1000),
    computeTime: z.number().min(0).default(0),
  })
  .strict();
export type MiniMallocCsvOptions = z.input<typeof MiniMallocCsvOptionsSchema>;

const CSV_COLUMNS = ['id', 'lower', 'upper', 'size'] as const;

const CsvRowSchema = z
  .object({
    id: z.string().min(1, 'id is empty'),
    lower: z.coerce.number().int('lower must be a whole number').min(0, 'lower must be ≥ 0'),
    upper: z.coerce.number().int('upper must be a whole number'),
    size: z.coerce.number().int('size must be a whole number of bytes').min(1, 'size must be ≥ 1'),
  })
  .refine((row) => row.upper > row.lower, {
    message: 'upper must be > lower (the live range [lower, upper) is half-open)',
    path: ['upper'],
  });

/**
 * Parse a MiniMalloc CSV: header `id,lower,upper,size` (further columns, e.g. a solution's `offset`,
 * are ignored), one buffer per line, live range [lower, upper). `source` names the file in messages.
 */
export function parseMiniMallocCsv(text: string, options: MiniMallocCsvOptions = {}, source = 'buffers.csv'): MallocProgram {
  const parsedOptions = MiniMallocCsvOptionsSchema.safeParse(options);
  if (!parsedOptions.success) {
    const issue = parsedOptions.error.issues[0];
    throw new ConfigError(`MiniMalloc CSV option ${formatPath(issue.path) || '(root)'}: ${issue.message}`, {
      context: { path: issue.path },
    });
  }
  const opts = parsedOptions.data;
  const lines = text.split(/\r?\n/);
  const headerIndex = lines.findIndex((line) => line.trim() !== '');
  if (headerIndex < 0)
    throw new ConfigError(`${source}: the file is empty; expected the header "${CSV_COLUMNS.join(',')}" and one line per buffer`);
  const header = lines[headerIndex].split(',').map((cell) => cell.trim().toLowerCase());
  if (CSV_COLUMNS.some((column, i) => header[i] !== column)) {
    throw new ConfigError(
      `${source} line ${headerIndex + 1}: header is "${lines[headerIndex].trim()}"; a MiniMalloc CSV starts with "${CSV_COLUMNS.join(',')}"`,
    );
  }
  const rows: Array<{ id: string; lower: number; upper: number; size: number }> = [];
  const seen = new Map<string, number>();
  for (let l = headerIndex + 1; l < lines.length; l++) {
    if (lines[l].trim() === '') continue;
    const cells = lines[l].split(',').map((cell) => cell.trim());
    const where = `${source} line ${l + 1}`;
    if (cells.length !== header.length) {
      throw new ConfigError(`${where}: ${cells.length} columns, the header has ${header.length} (${header.join(',')})`, {
        context: { source, line: l + 1 },
      });
    }
    const parsed = CsvRowSchema.safeParse({
      id: cells[0],
      lower: cells[1] === '' ? Number.NaN : cells[1],
      upper: cells[2] === '' ? Number.NaN : cells[2],
      size: cells[3] === '' ? Number.NaN : cells[3],
    });
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = String(issue.path[0] ?? 'row');
      const value = cells[CSV_COLUMNS.indexOf(field as (typeof CSV_COLUMNS)[number])];
      const message = /expected number, received NaN|Invalid input/i.test(issue.message) ? `${field} must be a number` : issue.message;
      throw new ConfigError(`${where}: ${field} = "${value ?? ''}": ${message}`, { context: { source, line: l + 1, field } });
    }
    const row = parsed.data;
    if (seen.has(row.id))
      throw new ConfigError(`${where}: id "${row.id}" already used on line ${seen.get(row.id)}; ids must be unique`, {
        context: { source, line: l + 1 },
      });
    seen.set(row.id, l + 1);
    rows.push(row);
  }
  if (rows.length === 0) throw new ConfigError(`${source}: no buffers after the header`);
  return programFromIntervals(rows, opts, opts.name ?? basename(source, extname(source)));
}

/** Build the documented default program for live ranges and sizes (see MiniMallocCsvOptionsSchema). */
function programFromIntervals(
  rows: ReadonlyArray<{ id: string; lower: number; upper: number; size: number }>,
  opts: z.output<typeof MiniMallocCsvOptionsSchema>,
  name: string,
): MallocProgram {
  const points = [...new Set(rows.flatMap((r) => [r.lower, r.upper]))].sort((a, b) => a - b);
  const index = new Map(points.map((p, i) => [p, i]));
  const T = points.length - 1;
  const accesses: Array<Array<{ buffer: string; bytes: number }>> = Array.from({ length: T }, () => []);
  const buffers = rows.map((r) => {
    const start = index.get(r.lower) as number;
    const end = index.get(r.upper) as number;
    accesses[start].push({ buffer: r.id, bytes: r.size });
    accesses[end - 1].push({ buffer: r.id, bytes: r.size });
    return { id: r.id, size: r.size, start, end };
  });
  const draft: MallocProgram = {
    name,
    memory: {
      fastCapacity: opts.fastCapacity ?? opts.alignment,
      alignment: opts.alignment,
      fastBandwidth: opts.fastBandwidth,
      slowBandwidth: opts.slowBandwidth,
    },
    buffers,
    instructions: accesses.map((list) => ({ computeTime: opts.computeTime, accesses: list })),
  };
  if (opts.fastCapacity !== undefined) return draft;
  const peak = compileProgram(draft).peakLiveBytes;
  const fastCapacity = Math.max(opts.alignment, Math.floor((opts.capacityFraction * peak) / opts.alignment) * opts.alignment);
  return { ...draft, memory: { ...draft.memory, fastCapacity } };
}

// ─── Files ──────────────────────────────────────────────────────────────────────────────────────────

/**
 * Load a program from a `.csv` (MiniMalloc; `csvOptions` apply) or `.json` file and compile it.
 * Throws ConfigError for an unreadable file, an unknown extension or invalid content.
 */
export function loadProgramFile(
  path: string,
  csvOptions: MiniMallocCsvOptions = {},
): { program: MallocProgram; compiled: CompiledProgram } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read program file ${path}: ${(err as Error).message}`, { cause: err, context: { path } });
  }
  const extension = extname(path).toLowerCase();
  let program: MallocProgram;
  if (extension === '.csv') program = parseMiniMallocCsv(text, csvOptions, path);
  else if (extension === '.json') program = parseProgramJson(text, path);
  else
    throw new ConfigError(
      `program file ${path}: unknown extension "${extension}"; use .csv (MiniMalloc id,lower,upper,size) or .json (program)`,
    );
  return { program, compiled: compileProgram(program) };
}

/** `instructions[2].accesses[0].bytes` from a zod issue path. */
function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : `${out ? '.' : ''}${String(key)}`;
  return out;
}
