/**
 * The action format (spec "Actions"): the agent's message is a list of calls, one per line, each either
 *
 *   app.api {"arg": value, …}                       (terse; the JSON object may be left out when empty)
 *   {"app": "app", "api": "api", "args": {…}}       (JSON; `args` optional)
 *
 * Blank lines and lines starting with `#` (notes to self) are ignored. Arguments are parsed with
 * JSON.parse — model output is never evaluated as code. A message with any malformed line runs nothing:
 * the parse result carries the errors, which the environment returns as the observation.
 */

/** One parsed call. `args` is a plain JSON object (validated later against the API's schema). */
export interface ParsedCall {
  readonly app: string;
  readonly api: string;
  readonly args: Record<string, unknown>;
}

/** Limits applied while parsing one message. */
export interface ParseLimits {
  /** Longest message accepted, in characters (≈ bytes / tokens for ASCII). */
  readonly maxActionChars: number;
  /** Most calls one message may hold. */
  readonly maxCallsPerTurn: number;
}

/** Parsed calls, or the reasons the message was refused (then `calls` is empty). */
export interface ParseResult {
  readonly calls: ParsedCall[];
  readonly errors: string[];
}

const TERSE = /^([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)(?:\s+(\S[\s\S]*))?$/;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** At most this many errors are listed (a garbage message would otherwise produce one per line). */
const MAX_ERRORS = 3;

/** Short, single-line quote of a piece of the message for an error. */
function quote(text: string): string {
  const flat = text.replace(/\s+/g, ' ');
  return JSON.stringify(flat.length > 40 ? `${flat.slice(0, 40)}...` : flat);
}

function parseArgs(text: string, label: string): Record<string, unknown> | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return `arguments of ${label} are not valid JSON (${(err as Error).message})`;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return `arguments of ${label} must be a JSON object like {"name": value}, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`;
  }
  return value as Record<string, unknown>;
}

function parseJsonCall(line: string): ParsedCall | string {
  const parsed = parseArgs(line, 'the call');
  if (typeof parsed === 'string') return parsed.replace('arguments of the call', 'the line');
  const { app, api, args, ...rest } = parsed;
  const extra = Object.keys(rest);
  if (typeof app !== 'string' || !IDENTIFIER.test(app) || typeof api !== 'string' || !IDENTIFIER.test(api)) {
    return 'a JSON call needs "app" and "api" names, e.g. {"app": "notes", "api": "show_note", "args": {"note_id": 1}}';
  }
  if (extra.length > 0) return `unknown field${extra.length > 1 ? 's' : ''} ${extra.join(', ')} in a JSON call (use "app", "api", "args")`;
  if (args === undefined) return { app, api, args: {} };
  if (args === null || typeof args !== 'object' || Array.isArray(args)) return `"args" of ${app}.${api} must be a JSON object`;
  return { app, api, args: args as Record<string, unknown> };
}

function parseLine(line: string): ParsedCall | string {
  if (line.startsWith('{')) return parseJsonCall(line);
  const match = TERSE.exec(line);
  if (match === null) return `expected a call like notes.show_note {"note_id": 1}, got ${quote(line)}`;
  const [, app, api, rest] = match;
  if (rest === undefined) return { app, api, args: {} };
  const args = parseArgs(rest, `${app}.${api}`);
  return typeof args === 'string' ? args : { app, api, args };
}

/**
 * Parse one agent message into calls. Never throws: every problem (too long, too many calls, a line that
 * is not a call, arguments that are not a JSON object) is an error string naming the line.
 */
export function parseAction(message: string, limits: ParseLimits): ParseResult {
  if (message.length > limits.maxActionChars) {
    return { calls: [], errors: [`the message is ${message.length} characters long; the limit is ${limits.maxActionChars}`] };
  }
  const calls: ParsedCall[] = [];
  const errors: string[] = [];
  const lines = message.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    const result = parseLine(line);
    if (typeof result === 'string') {
      if (errors.length < MAX_ERRORS) errors.push(`line ${i + 1}: ${result}`);
      else if (errors.length === MAX_ERRORS) errors.push('more lines have errors');
    } else calls.push(result);
  }
  if (errors.length > 0) return { calls: [], errors };
  if (calls.length > limits.maxCallsPerTurn) {
    return { calls: [], errors: [`${calls.length} calls in one message; the limit is ${limits.maxCallsPerTurn}`] };
  }
  return { calls, errors };
}

/** The canonical terse text of a call: `app.api {"a":1}`, or `app.api` without arguments. */
export function formatCall(call: ParsedCall): string {
  return Object.keys(call.args).length === 0 ? `${call.app}.${call.api}` : `${call.app}.${call.api} ${JSON.stringify(call.args)}`;
}

/** The canonical text of a message holding `calls`, one per line. */
export function formatCalls(calls: readonly ParsedCall[]): string {
  return calls.map(formatCall).join('\n');
}
