/**
 * The writer's per-chunk prompt (spec §Episode): the memory view — the full core and the most recent
 * `viewEntries` (5) entries of each list, headed "showing k of N" — then the chunk, and nothing else: no
 * earlier chunk text, no turn history (invariant 6). The prompt must fit `maxPromptTokens` (byte tokens,
 * the policy's context is BOS + prompt + response), so the view shrinks one entry at a time, always from
 * the list whose shown entries are longer, dropping the oldest shown entry; only when no entry is left is
 * the chunk itself cut, with a note saying how much was dropped.
 *
 * ```
 * [core]
 * (empty)
 * [semantic memory: showing 2 of 7]
 * s6: Mira Kolt lives in Tavon.
 * s7: Doran Vess works as a pilot.
 * [episodic memory: showing 0 of 0]
 * [chunk 3 of 4]
 * Bera Lomt was born in 1962. The road was quiet.
 * [tool calls]
 * ```
 */
import type { CallSyntax } from './parser.js';
import { countTokens, truncateToTokens } from './tokens.js';
import type { MemoryEntry, MemorySnapshot } from './types.js';

/** How prompts are rendered. */
export interface PromptOptions {
  /** Upper bound on the prompt's tokens. */
  readonly maxPromptTokens: number;
  /** Most recent entries shown per list (spec: 5). */
  readonly viewEntries: number;
  /** Syntax the instructions describe. */
  readonly callSyntax: CallSyntax;
  /** Start the prompt with a short description of the tools (off saves tokens for a writer trained on demonstrations). */
  readonly instructions: boolean;
}

/** What a prompt shows of the memory. */
export interface MemoryView {
  readonly core: string;
  /** The shown entries (the list's last `shown.length`, oldest first) and the list's size. */
  readonly semantic: { readonly shown: readonly MemoryEntry[]; readonly total: number };
  readonly episodic: { readonly shown: readonly MemoryEntry[]; readonly total: number };
}

/** A rendered chunk prompt. */
export interface ChunkPrompt {
  readonly text: string;
  /** Tokens of `text` (≤ maxPromptTokens). */
  readonly tokens: number;
  readonly view: MemoryView;
  /** The chunk text as shown (cut only when nothing else could give way). */
  readonly chunk: string;
  /** Tokens of the chunk that did not fit (0 normally). */
  readonly chunkTokensDropped: number;
}

/** Which chunk of how many (1-based `index` in the text). */
export interface ChunkPosition {
  /** 0-based chunk index. */
  readonly index: number;
  readonly count: number;
}

/** The tool description at the top of a prompt, per syntax. */
export function promptInstructions(syntax: CallSyntax): string {
  if (syntax === 'json') {
    return (
      'You are the memory writer. Read the chunk and write tool calls, one JSON object per line:\n' +
      '{"tool":"new_memory_insert","memory_type":"semantic_memory|episodic_memory","content":"TEXT"}\n' +
      '{"tool":"memory_update","memory_type":"core_memory|semantic_memory|episodic_memory","memory_id":"ID","new_content":"TEXT"}\n' +
      '{"tool":"memory_delete","memory_type":"semantic_memory|episodic_memory","memory_id":"ID"}\n'
    );
  }
  return (
    'You are the memory writer. Read the chunk and write tool calls, one per line:\n' +
    'insert semantic: FACT | insert episodic: TIME EVENT | update core: TEXT\n' +
    'update semantic ID: TEXT | delete episodic ID | delete core\n'
  );
}

/** Render the prompt for one chunk, shrinking the view (then the chunk) to fit `maxPromptTokens`. */
export function renderChunkPrompt(memory: MemorySnapshot, chunk: string, position: ChunkPosition, options: PromptOptions): ChunkPrompt {
  let semanticShown = Math.min(options.viewEntries, memory.semantic.length);
  let episodicShown = Math.min(options.viewEntries, memory.episodic.length);
  const view = () => ({
    core: memory.core,
    semantic: { shown: memory.semantic.slice(memory.semantic.length - semanticShown), total: memory.semantic.length },
    episodic: { shown: memory.episodic.slice(memory.episodic.length - episodicShown), total: memory.episodic.length },
  });
  for (;;) {
    const current = view();
    const text = renderPrompt(current, chunk, position, options);
    const tokens = countTokens(text);
    if (tokens <= options.maxPromptTokens) return { text, tokens, view: current, chunk, chunkTokensDropped: 0 };
    if (semanticShown + episodicShown === 0) break;
    if (semanticShown > 0 && (episodicShown === 0 || entryTokens(current.semantic.shown) >= entryTokens(current.episodic.shown)))
      semanticShown--;
    else episodicShown--;
  }
  // Nothing of the lists is shown and the prompt is still too long: cut the chunk. The note is budgeted
  // at its longest (every chunk token dropped), so the cut prompt always fits when the headers do.
  const empty = view();
  const chunkTokens = countTokens(chunk);
  const fixed = countTokens(renderPrompt(empty, '', position, options));
  const kept = truncateToTokens(chunk, options.maxPromptTokens - fixed - countTokens(chunkCutNote(chunkTokens)));
  const dropped = chunkTokens - countTokens(kept);
  const shown = kept + chunkCutNote(dropped);
  const text = renderPrompt(empty, shown, position, options);
  const tokens = countTokens(text);
  if (tokens <= options.maxPromptTokens) return { text, tokens, view: empty, chunk: shown, chunkTokensDropped: dropped };
  // The core and headers alone exceed the budget (the options schema prevents this): hard cut.
  const cut = truncateToTokens(renderPrompt(empty, '', position, options), options.maxPromptTokens);
  return { text: cut, tokens: countTokens(cut), view: empty, chunk: '', chunkTokensDropped: chunkTokens };
}

/** The note that ends a chunk cut to fit the prompt. */
export function chunkCutNote(droppedTokens: number): string {
  return ` [chunk cut: ${droppedTokens} more tokens]`;
}

/** The prompt text for a given view (no budget applied). */
export function renderPrompt(
  view: MemoryView,
  chunk: string,
  position: ChunkPosition,
  options: Pick<PromptOptions, 'callSyntax' | 'instructions'>,
): string {
  const lines: string[] = [];
  if (options.instructions) lines.push(promptInstructions(options.callSyntax).trimEnd());
  lines.push('[core]', view.core.length > 0 ? view.core : '(empty)');
  lines.push(`[semantic memory: showing ${view.semantic.shown.length} of ${view.semantic.total}]`);
  for (const entry of view.semantic.shown) lines.push(`${entry.id}: ${oneLine(entry.content)}`);
  lines.push(`[episodic memory: showing ${view.episodic.shown.length} of ${view.episodic.total}]`);
  for (const entry of view.episodic.shown) lines.push(`${entry.id}: ${oneLine(entry.content)}`);
  lines.push(`[chunk ${position.index + 1} of ${position.count}]`, chunk, '[tool calls]');
  return `${lines.join('\n')}\n`;
}

/** Entries are shown one per line: line breaks inside an entry become spaces in the view. */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ');
}

function entryTokens(entries: readonly MemoryEntry[]): number {
  return entries.reduce((sum, e) => sum + countTokens(oneLine(e.content)) + countTokens(e.id) + 3, 0);
}
