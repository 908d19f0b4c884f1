/**
 * One writer episode without the reader (spec §Episode): for chunk t = 1..n, the prompt is rendered from
 * the current memory and chunk t only; the writer's one response is parsed and its calls run in order;
 * per-chunk stats are recorded. The environment, the demonstrations and the scripted-writer baseline all
 * drive this class, so the prompt a demonstration shows is exactly the prompt the environment would show.
 */
import type { CallOutcome } from '../../rewards/memalpha.js';
import type { ContentJudgeItem } from './judge.js';
import { parseToolCalls } from './parser.js';
import { MemoryStore, type MemoryStoreOptions } from './store.js';
import { countTokens } from './tokens.js';
import type { MemalphaInstance, MemorySnapshot, ParsedCall, ToolCall, ToolResult } from './types.js';
import { renderChunkPrompt, type ChunkPrompt, type PromptOptions } from './view.js';

/** Options of one episode. */
export interface EpisodeOptions {
  readonly memory: MemoryStoreOptions;
  readonly prompt: PromptOptions;
}

/** One call of a chunk and what became of it. */
export interface CallRecord {
  readonly parsed: ParsedCall;
  /** The memory's result; malformed calls get an error result without reaching the memory. */
  readonly result: ToolResult;
  /** What a successful insert / update wrote (trimmed; a core rewrite after the cap). */
  readonly written?: string;
}

/** Per-chunk record: one training sample of the writer. */
export interface ChunkRecord {
  /** 0-based chunk index. */
  readonly index: number;
  /** Tokens of the chunk's text (before any cut for the prompt). */
  readonly chunkTokens: number;
  /** Tokens of the prompt the writer saw. */
  readonly promptTokens: number;
  /** List entries the prompt showed. */
  readonly shown: { readonly semantic: number; readonly episodic: number };
  /** Chunk tokens cut from the prompt to fit (0 normally). */
  readonly chunkTokensDropped: number;
  /** Tokens of the writer's response. */
  readonly responseTokens: number;
  readonly calls: readonly CallRecord[];
}

/** A writer episode over one instance. */
export class WriterEpisode {
  readonly store: MemoryStore;
  private readonly chunkRecords: ChunkRecord[] = [];
  private prompt: ChunkPrompt | undefined;

  constructor(
    readonly instance: MemalphaInstance,
    readonly options: EpisodeOptions,
  ) {
    this.store = new MemoryStore(options.memory);
  }

  /** True once every chunk has had its response. */
  get done(): boolean {
    return this.chunkRecords.length >= this.instance.chunks.length;
  }

  /** 0-based index of the chunk awaiting a response (= chunks processed so far). */
  get chunkIndex(): number {
    return this.chunkRecords.length;
  }

  /** The prompt for the current chunk. */
  currentPrompt(): ChunkPrompt {
    if (this.done) throw new RangeError('WriterEpisode: every chunk has been processed');
    this.prompt ??= renderChunkPrompt(
      this.store.snapshot(),
      this.instance.chunks[this.chunkIndex],
      { index: this.chunkIndex, count: this.instance.chunks.length },
      this.options.prompt,
    );
    return this.prompt;
  }

  /** Parse `response`, run its calls in order on the memory, record the chunk and move to the next. */
  apply(response: string): ChunkRecord {
    const prompt = this.currentPrompt();
    const calls = parseToolCalls(response).map((parsed): CallRecord => {
      if (!parsed.ok) return { parsed, result: { ok: false, skipped: false, message: `error: malformed call: ${parsed.error}` } };
      const result = this.store.execute(parsed.call);
      return { parsed, result, written: result.ok && !result.skipped ? this.writtenBy(parsed.call) : undefined };
    });
    const record: ChunkRecord = {
      index: this.chunkIndex,
      chunkTokens: countTokens(this.instance.chunks[this.chunkIndex]),
      promptTokens: prompt.tokens,
      shown: { semantic: prompt.view.semantic.shown.length, episodic: prompt.view.episodic.shown.length },
      chunkTokensDropped: prompt.chunkTokensDropped,
      responseTokens: countTokens(response),
      calls,
    };
    this.chunkRecords.push(record);
    this.prompt = undefined;
    return record;
  }

  /** The chunks processed so far, in order. */
  records(): readonly ChunkRecord[] {
    return this.chunkRecords;
  }

  memory(): MemorySnapshot {
    return this.store.snapshot();
  }

  /** Σ_t |c_t| over the chunks processed so far. */
  inputTokens(): number {
    return this.chunkRecords.reduce((sum, r) => sum + r.chunkTokens, 0);
  }

  /** Every well-formed call, in execution order (replaying them rebuilds the memory: invariant 8). */
  loggedCalls(): ToolCall[] {
    return this.chunkRecords.flatMap((r) => r.calls.flatMap((c) => (c.parsed.ok ? [c.parsed.call] : [])));
  }

  private writtenBy(call: ToolCall): string | undefined {
    if (call.tool === 'memory_delete') return undefined;
    if (call.memory_type === 'core_memory') return this.store.coreText();
    return (call.tool === 'new_memory_insert' ? call.content : call.new_content).trim();
  }
}

/** The content-judge items of every successful write of `records`, in call order (r4's inputs). */
export function contentItems(records: readonly ChunkRecord[]): ContentJudgeItem[] {
  return records.flatMap((record) => record.calls.flatMap((call) => contentItem(call) ?? []));
}

/**
 * The reward's view of every call, per chunk; `validities[i]` is the content judge's score of
 * `contentItems(records)[i]`.
 */
export function callOutcomes(records: readonly ChunkRecord[], validities: readonly number[]): CallOutcome[][] {
  let next = 0;
  return records.map((record) =>
    record.calls.map((call): CallOutcome => {
      if (!call.parsed.ok || !call.result.ok) return { kind: 'failed' };
      if (call.result.skipped) return { kind: 'skipped' };
      if (contentItem(call) === undefined) return { kind: 'delete' };
      return { kind: 'write', validity: validities[next++] ?? 0 };
    }),
  );
}

/** The content-judge item of a successful write (undefined for other calls). */
function contentItem(call: CallRecord): ContentJudgeItem | undefined {
  if (!call.parsed.ok || !call.result.ok || call.result.skipped || call.written === undefined) return undefined;
  const tool = call.parsed.call.tool;
  if (tool === 'memory_delete') return undefined;
  return { tool, memoryType: call.parsed.call.memory_type, content: call.written };
}
