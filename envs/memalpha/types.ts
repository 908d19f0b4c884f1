/**
 * Mem-α glossary (spec: Wang et al. 2025, arXiv 2509.25911). A *writer* (the policy) reads an *instance*
 * one *chunk* at a time and edits a three-part *memory* with *tool calls*; a frozen *reader* answers the
 * instance's *questions* from the final memory. Units: every token count is byte-tokenizer tokens
 * (1 token = 1 UTF-8 byte, see tokens.ts). Records are readonly and JSON-serialisable.
 */
import type { QaMetric } from '../../rewards/memalpha.js';

/** The three parts of the memory, with the names the tools use. */
export const MEMORY_TYPES = ['core_memory', 'semantic_memory', 'episodic_memory'] as const;
/** `core_memory` (one paragraph), `semantic_memory` (facts), `episodic_memory` (timestamped events). */
export type MemoryType = (typeof MEMORY_TYPES)[number];
/** The two list memories. */
export type ListMemoryType = Exclude<MemoryType, 'core_memory'>;

/** The writer's action space (spec §Tools). */
export const TOOL_NAMES = ['new_memory_insert', 'memory_update', 'memory_delete'] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

/** One entry of a list memory. */
export interface MemoryEntry {
  /** Unique within the whole memory for its lifetime (never reused after a delete). */
  readonly id: string;
  /** Trimmed, non-empty text. */
  readonly content: string;
  /**
   * The memory's write counter when this entry was inserted or last updated (1, 2, …): a recency order
   * across both lists that the reader uses to prefer newer information on ties. Not shown to the writer.
   */
  readonly written: number;
}

/** A read-only copy of the memory (deep-frozen); readers and evaluation only ever see this. */
export interface MemorySnapshot {
  /** The core paragraph ('' when empty); at most the store's core cap in tokens. */
  readonly core: string;
  /** Write counter of the core's last rewrite (0 if never written). */
  readonly coreWritten: number;
  /** Semantic entries, oldest first. */
  readonly semantic: readonly MemoryEntry[];
  /** Episodic entries, oldest first. */
  readonly episodic: readonly MemoryEntry[];
}

/**
 * A well-formed tool call (argument names as in the original tools). Whether it is *valid* — e.g. an insert
 * into core, an update without `memory_id` on a list, an unknown id — is decided by the memory when it runs.
 */
export type ToolCall =
  | { readonly tool: 'new_memory_insert'; readonly memory_type: MemoryType; readonly content: string }
  | { readonly tool: 'memory_update'; readonly memory_type: MemoryType; readonly new_content: string; readonly memory_id?: string }
  | { readonly tool: 'memory_delete'; readonly memory_type: MemoryType; readonly memory_id?: string };

/**
 * What running a call returned (spec §Tools `{ok, skipped, message}`): `ok` — the call was accepted;
 * `skipped` — accepted but nothing written (duplicate insert). A call *succeeds* (counts for r2) when
 * `ok && !skipped`. `message` is the result string a tool would return.
 */
export interface ToolResult {
  readonly ok: boolean;
  readonly skipped: boolean;
  readonly message: string;
  /** The id written (insert) or addressed (update / delete of a list entry). */
  readonly id?: string;
  /** A core rewrite was cut to the core cap. */
  readonly truncated?: boolean;
}

/** One call found in a writer response: parsed, or malformed with the reason (a failed call). */
export type ParsedCall =
  | { readonly ok: true; readonly call: ToolCall; readonly source: string }
  | { readonly ok: false; readonly error: string; readonly source: string };

/** The four training / evaluation categories of the built-in generators (spec §Data). */
export const CATEGORIES = ['ar', 'ttl', 'lru', 'cr'] as const;
/** `ar` Accurate Retrieval, `ttl` Test-Time Learning, `lru` Long-Range Understanding, `cr` Conflict Resolution. */
export type Category = (typeof CATEGORIES)[number];

/** One question with its gold answers. */
export interface QaItem {
  readonly question: string;
  /** Gold answers (any one counts); for keyword-hit sources one comma-separated keyword string (Mem-α format). */
  readonly answers: readonly string[];
}

/** One Mem-α instance: the chunks a writer reads, the questions the reader answers, the data source. */
export interface MemalphaInstance {
  /** Stable identifier (file instances: `instance_id` or `<file>#<line>`; generated: `<category>/<split>/<index>`). */
  readonly id: string;
  /** Data source (picks the QA metric, names the `qa/<source>` reward part). */
  readonly source: string;
  /** Metric of this instance's questions when the data names one; otherwise chosen from `source`. */
  readonly metric?: QaMetric;
  /** Category, when known (generated instances). */
  readonly category?: Category;
  /** The chunks, in reading order (non-empty strings). */
  readonly chunks: readonly string[];
  readonly questions: readonly QaItem[];
}
