/**
 * The Mem-α memory and its three tools (spec §Memory, §Tools). `execute(call)` never throws: every invalid
 * call (core insert, missing or unknown id, empty content, bad type) is an error result and changes nothing.
 *
 * - core: one paragraph, capped at `coreTokenCap` tokens (512); an over-long rewrite is cut at a word
 *   boundary and ends with {@link CORE_TRUNCATION_NOTICE}, so tokens(core) ≤ cap always (invariant 1).
 * - semantic / episodic: ordered lists of {id, content}; ids are unique over the memory's lifetime and
 *   never reused; inserting content identical (after trimming) to an entry of the same list is skipped.
 * - IDs: `sequential` (s1, s2, … / e1, e2, …: short, so a small writer can copy them) or `random`
 *   (4 hex digits as in the original, drawn from a seeded Rng with a collision check). Both are
 *   deterministic, so replaying the logged calls on an empty memory reproduces it exactly (invariant 8).
 */
import { Rng } from '../../core/rng.js';
import { countTokens, truncateToTokens } from './tokens.js';
import { MEMORY_TYPES, type ListMemoryType, type MemorySnapshot, type MemoryType, type ToolCall, type ToolResult } from './types.js';

/** Appended to a core rewrite that was cut to the cap (counted inside the cap). */
export const CORE_TRUNCATION_NOTICE = ' [truncated]';

/** The spec's core cap in tokens. */
export const DEFAULT_CORE_TOKEN_CAP = 512;

/** How entry ids are made. */
export type IdScheme = 'sequential' | 'random';

/** Options of a {@link MemoryStore}; defaults in {@link MemoryStore}'s constructor. */
export interface MemoryStoreOptions {
  /** Core cap in tokens (default 512; at least 32 so the notice fits). */
  readonly coreTokenCap?: number;
  /** Id scheme (default `sequential`). */
  readonly idScheme?: IdScheme;
  /** Seed of the `random` id stream (default 0). */
  readonly idSeed?: number;
}

/** A list entry while the store owns it (mutable `content` / `written`; copied out in snapshots). */
interface LiveEntry {
  readonly id: string;
  content: string;
  written: number;
}

/** The memory of one episode. */
export class MemoryStore {
  /** Core cap in tokens. */
  readonly coreTokenCap: number;
  readonly idScheme: IdScheme;
  private core = '';
  private coreWritten = 0;
  private writes = 0;
  private readonly lists: Record<ListMemoryType, LiveEntry[]> = { semantic_memory: [], episodic_memory: [] };
  /** content → number of entries with it, per list (duplicate check in O(1)). */
  private readonly contentCounts: Record<ListMemoryType, Map<string, number>> = { semantic_memory: new Map(), episodic_memory: new Map() };
  private readonly byId = new Map<string, { list: ListMemoryType; entry: LiveEntry }>();
  /** Every id ever issued (ids are never reused). */
  private readonly issued = new Set<string>();
  private readonly sequence: Record<ListMemoryType, number> = { semantic_memory: 0, episodic_memory: 0 };
  private readonly rng: Rng;

  constructor(options: MemoryStoreOptions = {}) {
    this.coreTokenCap = options.coreTokenCap ?? DEFAULT_CORE_TOKEN_CAP;
    this.idScheme = options.idScheme ?? 'sequential';
    if (!Number.isInteger(this.coreTokenCap) || this.coreTokenCap < 32) {
      throw new RangeError(`MemoryStore: coreTokenCap must be a whole number ≥ 32 tokens, got ${this.coreTokenCap}`);
    }
    if (this.idScheme !== 'sequential' && this.idScheme !== 'random') {
      throw new RangeError(`MemoryStore: idScheme must be 'sequential' or 'random', got ${String(this.idScheme)}`);
    }
    this.rng = new Rng(options.idSeed ?? 0);
  }

  /** Run one call; never throws. See the module comment for the semantics of each tool. */
  execute(call: ToolCall): ToolResult {
    if (call === null || typeof call !== 'object') return error('a tool call must be an object');
    const type = (call as { memory_type?: unknown }).memory_type;
    if (typeof type !== 'string' || !(MEMORY_TYPES as readonly string[]).includes(type)) {
      return error(`memory_type must be one of ${MEMORY_TYPES.join(', ')}, got ${describe(type)}`);
    }
    const memoryType = type as MemoryType;
    switch (call.tool) {
      case 'new_memory_insert':
        return this.insert(memoryType, call.content);
      case 'memory_update':
        return this.update(memoryType, call.new_content, call.memory_id);
      case 'memory_delete':
        return this.delete(memoryType, call.memory_id);
      default:
        return error(`unknown tool ${describe((call as { tool?: unknown }).tool)}; tools: new_memory_insert, memory_update, memory_delete`);
    }
  }

  /** `new_memory_insert`: append to a list; duplicate → skipped; core → error. */
  insert(type: MemoryType, content: unknown): ToolResult {
    if (type === 'core_memory') return error('new_memory_insert cannot write core_memory; rewrite the core with memory_update');
    if (!isListType(type)) return error(`memory_type must be semantic_memory or episodic_memory, got ${describe(type)}`);
    const text = cleanContent(content);
    if (text === undefined) return error('content must be a non-empty string');
    if ((this.contentCounts[type].get(text) ?? 0) > 0) {
      return { ok: true, skipped: true, message: `skipped: ${type} already holds this content` };
    }
    const id = this.nextId(type);
    const entry: LiveEntry = { id, content: text, written: ++this.writes };
    this.lists[type].push(entry);
    this.byId.set(id, { list: type, entry });
    this.countContent(type, text, +1);
    return { ok: true, skipped: false, message: `inserted ${id} into ${type}`, id };
  }

  /** `memory_update`: core → rewrite (capped); list → replace the content of `id`; unknown id → error. */
  update(type: MemoryType, newContent: unknown, id?: unknown): ToolResult {
    const text = cleanContent(newContent);
    if (type === 'core_memory') {
      if (text === undefined) return error('new_content must be a non-empty string (memory_delete clears the core)');
      const capped = capCore(text, this.coreTokenCap);
      this.core = capped;
      this.coreWritten = ++this.writes;
      const truncated = capped !== text;
      return {
        ok: true,
        skipped: false,
        truncated,
        message: truncated
          ? `core_memory rewritten, truncated from ${countTokens(text)} to ${countTokens(capped)} tokens (cap ${this.coreTokenCap})`
          : 'core_memory rewritten',
      };
    }
    if (!isListType(type)) return error(`memory_type must be one of ${MEMORY_TYPES.join(', ')}, got ${describe(type)}`);
    if (typeof id !== 'string' || id.length === 0) return error(`memory_update on ${type} needs a memory_id`);
    if (text === undefined) return error('new_content must be a non-empty string');
    const found = this.byId.get(id);
    if (found === undefined || found.list !== type) return error(`no entry ${id} in ${type}`);
    this.countContent(type, found.entry.content, -1);
    found.entry.content = text;
    found.entry.written = ++this.writes;
    this.countContent(type, text, +1);
    return { ok: true, skipped: false, message: `updated ${id} in ${type}`, id };
  }

  /** `memory_delete`: core → clear; list → remove `id`; an unknown id is a success that changes nothing. */
  delete(type: MemoryType, id?: unknown): ToolResult {
    if (type === 'core_memory') {
      this.core = '';
      this.coreWritten = ++this.writes;
      return { ok: true, skipped: false, message: 'core_memory cleared' };
    }
    if (!isListType(type)) return error(`memory_type must be one of ${MEMORY_TYPES.join(', ')}, got ${describe(type)}`);
    if (typeof id !== 'string' || id.length === 0) return error(`memory_delete on ${type} needs a memory_id`);
    const found = this.byId.get(id);
    if (found === undefined || found.list !== type)
      return { ok: true, skipped: false, message: `no entry ${id} in ${type}; nothing deleted`, id };
    const list = this.lists[type];
    list.splice(list.indexOf(found.entry), 1);
    this.byId.delete(id);
    this.countContent(type, found.entry.content, -1);
    return { ok: true, skipped: false, message: `deleted ${id} from ${type}`, id };
  }

  /** A deep-frozen copy of the memory. */
  snapshot(): MemorySnapshot {
    const copy = (list: LiveEntry[]) => Object.freeze(list.map((e) => Object.freeze({ id: e.id, content: e.content, written: e.written })));
    return Object.freeze({
      core: this.core,
      coreWritten: this.coreWritten,
      semantic: copy(this.lists.semantic_memory),
      episodic: copy(this.lists.episodic_memory),
    });
  }

  /** The core paragraph ('' when empty). */
  coreText(): string {
    return this.core;
  }

  /** |M|: tokens of the core plus every entry's content (ids not counted). */
  tokens(): number {
    return memoryTokens(this.snapshot());
  }

  /** Entries in a list. */
  size(type: ListMemoryType): number {
    return this.lists[type].length;
  }

  private nextId(type: ListMemoryType): string {
    if (this.idScheme === 'sequential') {
      const id = `${type === 'semantic_memory' ? 's' : 'e'}${++this.sequence[type]}`;
      this.issued.add(id);
      return id;
    }
    // 4 hex digits as in the original; widen to 8 after repeated collisions so ids never repeat.
    for (let attempt = 0; ; attempt++) {
      const value = this.rng.nextU32();
      const id = attempt < 16 ? (value & 0xffff).toString(16).padStart(4, '0') : value.toString(16).padStart(8, '0');
      if (!this.issued.has(id)) {
        this.issued.add(id);
        return id;
      }
    }
  }

  private countContent(type: ListMemoryType, content: string, delta: number): void {
    const counts = this.contentCounts[type];
    const next = (counts.get(content) ?? 0) + delta;
    if (next <= 0) counts.delete(content);
    else counts.set(content, next);
  }
}

/** |M| of a snapshot: tokens of the core plus every entry's content (ids not counted). */
export function memoryTokens(memory: MemorySnapshot): number {
  let tokens = countTokens(memory.core);
  for (const entry of memory.semantic) tokens += countTokens(entry.content);
  for (const entry of memory.episodic) tokens += countTokens(entry.content);
  return tokens;
}

/**
 * Cap a core rewrite at `cap` tokens. Text within the cap is returned unchanged; longer text keeps the
 * longest prefix that ends at a word boundary (a whitespace), followed by {@link CORE_TRUNCATION_NOTICE},
 * the whole within `cap`. A first word longer than the budget is cut between code points.
 * Example (cap 32): `"alpha beta gamma delta epsilon zeta"` (35 tokens) → `"alpha beta gamma [truncated]"` (28).
 */
export function capCore(text: string, cap: number): string {
  if (countTokens(text) <= cap) return text;
  const budget = cap - countTokens(CORE_TRUNCATION_NOTICE);
  const prefix = truncateToTokens(text, budget);
  // `prefix` may end inside a word unless the next character of `text` is whitespace.
  const cutInsideWord = prefix.length < text.length && !/\s/.test(text[prefix.length]);
  let kept = prefix;
  if (cutInsideWord) {
    const boundary = prefix.search(/\s\S*$/);
    if (boundary > 0) kept = prefix.slice(0, boundary);
  }
  const head = kept.trimEnd();
  return head.length > 0 ? `${head}${CORE_TRUNCATION_NOTICE}` : CORE_TRUNCATION_NOTICE.trim();
}

/** Replay calls on an empty memory (invariant 8): the same calls and options give the same memory. */
export function replayCalls(calls: Iterable<ToolCall>, options: MemoryStoreOptions = {}): MemoryStore {
  const store = new MemoryStore(options);
  for (const call of calls) store.execute(call);
  return store;
}

function isListType(type: unknown): type is ListMemoryType {
  return type === 'semantic_memory' || type === 'episodic_memory';
}

function cleanContent(content: unknown): string | undefined {
  if (typeof content !== 'string') return undefined;
  const text = content.trim();
  return text.length === 0 ? undefined : text;
}

function error(message: string): ToolResult {
  return { ok: false, skipped: false, message: `error: ${message}` };
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return value === undefined ? 'nothing' : typeof value;
}
