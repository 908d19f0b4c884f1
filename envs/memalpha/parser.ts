/**
 * Parsing the writer's response into tool calls (spec §Tools: several calls per response, executed in
 * order; malformed calls are failed calls, never exceptions). Two syntaxes, both always accepted:
 *
 * **line** — one call per line, short enough for a small byte-level writer to learn:
 * ```
 * insert semantic: Mira Kolt lives in Tavon.
 * insert episodic: Day 3: Mira Kolt found the lantern in Brel.
 * update core: Story of Mira Kolt, a baker from Tavon.
 * update semantic s3: Mira Kolt lives in Brel.
 * delete episodic e2
 * delete core
 * ```
 * Verbs `insert | update | delete` (or the tool names), memory types `core | semantic | episodic` (or with
 * the `_memory` suffix), both case-insensitive; the text follows the first `:` and is trimmed.
 *
 * **json** — the original tools' JSON, one object per call (an array of objects also works; an object may
 * span lines; `{"name": …, "arguments": {…}}` is accepted too):
 * ```
 * {"tool":"new_memory_insert","memory_type":"semantic_memory","content":"Mira Kolt lives in Tavon."}
 * {"tool":"memory_update","memory_type":"semantic_memory","memory_id":"s3","new_content":"Mira Kolt lives in Brel."}
 * ```
 * Blank lines, code fences (```) and `<tool_call>` tags are ignored; any other line that is not a call is
 * one malformed call. `parseToolCalls` never throws (checked by fuzzing in test/unit/memalpha/parser.test.ts).
 */
import { MEMORY_TYPES, TOOL_NAMES, type MemoryType, type ParsedCall, type ToolCall, type ToolName } from './types.js';

/** Which syntax prompts and demonstrations use (the parser accepts both). */
export type CallSyntax = 'line' | 'json';

/** Longest JSON value (characters) the parser looks for across lines; longer ones are malformed. */
const MAX_JSON_CHARS = 8192;
/** Characters of the offending text kept in a malformed call's `source`. */
const MAX_SOURCE_CHARS = 200;

/** Every call in `response`, in order: parsed calls and malformed ones (with the reason). */
export function parseToolCalls(response: string): ParsedCall[] {
  const calls: ParsedCall[] = [];
  if (typeof response !== 'string') return calls;
  const text = response.replace(/<\/?tool_call>/g, '\n');
  let pos = 0;
  while (pos < text.length) {
    pos = skipWhitespace(text, pos);
    if (pos >= text.length) break;
    let lineEnd = text.indexOf('\n', pos);
    if (lineEnd < 0) lineEnd = text.length;
    const first = text[pos];
    if (first === '{' || first === '[') {
      const end = balancedEnd(text, pos, Math.min(text.length, pos + MAX_JSON_CHARS));
      if (end >= 0) {
        calls.push(...callsFromJson(text.slice(pos, end + 1)));
        pos = end + 1;
        while (pos < text.length && /[\s,;]/.test(text[pos])) pos++;
        continue;
      }
      calls.push(malformed(text.slice(pos, lineEnd), 'unbalanced JSON: a `{` or `[` without its closing bracket'));
      pos = lineEnd + 1;
      continue;
    }
    const line = text.slice(pos, lineEnd).trim();
    pos = lineEnd + 1;
    if (/^```[\w-]*$/.test(line)) continue;
    calls.push(parseLine(line));
  }
  return calls;
}

/** One call in the given syntax (a single line: newlines inside the text become spaces). */
export function formatToolCall(call: ToolCall, syntax: CallSyntax): string {
  if (syntax === 'json') {
    switch (call.tool) {
      case 'new_memory_insert':
        return JSON.stringify({ tool: call.tool, memory_type: call.memory_type, content: call.content });
      case 'memory_update':
        return JSON.stringify(
          call.memory_id === undefined
            ? { tool: call.tool, memory_type: call.memory_type, new_content: call.new_content }
            : { tool: call.tool, memory_type: call.memory_type, memory_id: call.memory_id, new_content: call.new_content },
        );
      case 'memory_delete':
        return JSON.stringify(
          call.memory_id === undefined
            ? { tool: call.tool, memory_type: call.memory_type }
            : { tool: call.tool, memory_type: call.memory_type, memory_id: call.memory_id },
        );
    }
  }
  const type = shortType(call.memory_type);
  const id = 'memory_id' in call && call.memory_id !== undefined ? ` ${call.memory_id}` : '';
  switch (call.tool) {
    case 'new_memory_insert':
      return `insert ${type}: ${oneLine(call.content)}`;
    case 'memory_update':
      return `update ${type}${id}: ${oneLine(call.new_content)}`;
    case 'memory_delete':
      return `delete ${type}${id}`;
  }
}

/** A response holding `calls`, one per line. */
export function formatToolCalls(calls: readonly ToolCall[], syntax: CallSyntax): string {
  return calls.map((call) => formatToolCall(call, syntax)).join('\n');
}

// ─── line syntax ──────────────────────────────────────────────────────────────────────────────────────

const VERBS: Readonly<Record<string, ToolName>> = {
  insert: 'new_memory_insert',
  new_memory_insert: 'new_memory_insert',
  update: 'memory_update',
  memory_update: 'memory_update',
  delete: 'memory_delete',
  memory_delete: 'memory_delete',
};

/** `VERB TYPE [ID] [: TEXT]`; the id may not contain whitespace or `:`. */
const LINE_CALL = /^([A-Za-z_]+)\s+([A-Za-z_]+)(?:\s+([^\s:]+))?\s*(?::(.*))?$/s;

function parseLine(line: string): ParsedCall {
  const match = LINE_CALL.exec(line);
  if (match === null) return malformed(line, 'not a tool call; write `insert|update|delete TYPE [ID][: TEXT]`');
  const [, verbText, typeText, id, text] = match;
  const tool = VERBS[verbText.toLowerCase()];
  if (tool === undefined) return malformed(line, `unknown verb ${JSON.stringify(verbText)}; use insert, update or delete`);
  const memoryType = memoryTypeOf(typeText);
  if (memoryType === undefined) return malformed(line, `unknown memory type ${JSON.stringify(typeText)}; use core, semantic or episodic`);
  const content = text?.trim();
  switch (tool) {
    case 'new_memory_insert':
      if (id !== undefined) return malformed(line, 'insert takes no id: `insert TYPE: TEXT`');
      if (content === undefined) return malformed(line, 'insert needs its text after `:`');
      return parsed(line, { tool, memory_type: memoryType, content });
    case 'memory_update':
      if (content === undefined) return malformed(line, 'update needs the new text after `:`');
      if (memoryType === 'core_memory' && id !== undefined) return malformed(line, 'update core takes no id: `update core: TEXT`');
      return parsed(
        line,
        id === undefined
          ? { tool, memory_type: memoryType, new_content: content }
          : { tool, memory_type: memoryType, new_content: content, memory_id: id },
      );
    case 'memory_delete':
      if (content !== undefined) return malformed(line, 'delete takes no text: `delete TYPE ID`');
      if (memoryType === 'core_memory' && id !== undefined) return malformed(line, 'delete core takes no id');
      return parsed(line, id === undefined ? { tool, memory_type: memoryType } : { tool, memory_type: memoryType, memory_id: id });
  }
}

// ─── JSON syntax ──────────────────────────────────────────────────────────────────────────────────────

function callsFromJson(segment: string): ParsedCall[] {
  let value: unknown;
  try {
    value = JSON.parse(segment);
  } catch (err) {
    return [malformed(segment, `invalid JSON (${(err as Error).message})`)];
  }
  if (Array.isArray(value)) return value.map((item) => callFromJsonValue(item, safeStringify(item)));
  return [callFromJsonValue(value, segment)];
}

function callFromJsonValue(value: unknown, source: string): ParsedCall {
  if (!isRecord(value)) return malformed(source, 'a JSON tool call must be an object');
  const fn = isRecord(value.function) ? value.function : undefined;
  const name = value.tool ?? value.name ?? fn?.name;
  let args: unknown = value.arguments ?? fn?.arguments ?? value;
  if (typeof args === 'string') {
    try {
      args = JSON.parse(args);
    } catch {
      return malformed(source, '`arguments` is a string that is not JSON');
    }
  }
  if (typeof name !== 'string' || !(TOOL_NAMES as readonly string[]).includes(name)) {
    return malformed(source, `"tool" must be one of ${TOOL_NAMES.join(', ')}, got ${describeJson(name)}`);
  }
  if (!isRecord(args)) return malformed(source, '`arguments` must be an object');
  const memoryType = typeof args.memory_type === 'string' ? memoryTypeOf(args.memory_type) : undefined;
  if (memoryType === undefined)
    return malformed(source, `"memory_type" must be one of ${MEMORY_TYPES.join(', ')}, got ${describeJson(args.memory_type)}`);
  const id = args.memory_id;
  if (id !== undefined && id !== null && typeof id !== 'string' && !(typeof id === 'number' && Number.isInteger(id))) {
    return malformed(source, `"memory_id" must be a string, got ${describeJson(id)}`);
  }
  const memoryId = id === undefined || id === null ? undefined : String(id);
  const tool = name as ToolName;
  switch (tool) {
    case 'new_memory_insert':
      if (typeof args.content !== 'string')
        return malformed(source, `new_memory_insert needs a string "content", got ${describeJson(args.content)}`);
      return parsed(source, { tool, memory_type: memoryType, content: args.content });
    case 'memory_update':
      if (typeof args.new_content !== 'string')
        return malformed(source, `memory_update needs a string "new_content", got ${describeJson(args.new_content)}`);
      return parsed(
        source,
        memoryId === undefined
          ? { tool, memory_type: memoryType, new_content: args.new_content }
          : { tool, memory_type: memoryType, new_content: args.new_content, memory_id: memoryId },
      );
    case 'memory_delete':
      return parsed(
        source,
        memoryId === undefined ? { tool, memory_type: memoryType } : { tool, memory_type: memoryType, memory_id: memoryId },
      );
  }
}

/**
 * Index of the bracket closing the JSON value that opens at `start` (strings and escapes respected), or −1
 * if it does not close before `limit`. Only bracket balance is checked; JSON.parse judges the rest.
 */
function balancedEnd(text: string, start: number, limit: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < limit; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

// ─── helpers ──────────────────────────────────────────────────────────────────────────────────────────

function memoryTypeOf(text: string): MemoryType | undefined {
  const name = text.toLowerCase();
  const full = name.endsWith('_memory') ? name : `${name}_memory`;
  return (MEMORY_TYPES as readonly string[]).includes(full) ? (full as MemoryType) : undefined;
}

function shortType(type: MemoryType): string {
  return type.slice(0, type.indexOf('_'));
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

function skipWhitespace(text: string, pos: number): number {
  while (pos < text.length && /\s/.test(text[pos])) pos++;
  return pos;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parsed(source: string, call: ToolCall): ParsedCall {
  return { ok: true, call, source: clip(source) };
}

function malformed(source: string, error: string): ParsedCall {
  return { ok: false, error, source: clip(source) };
}

function clip(text: string): string {
  const trimmed = text.trim();
  return trimmed.length > MAX_SOURCE_CHARS ? `${trimmed.slice(0, MAX_SOURCE_CHARS)}…` : trimmed;
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return '(unprintable JSON value)';
  }
}

function describeJson(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = safeStringify(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
