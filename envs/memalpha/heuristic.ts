/**
 * The scripted writer behind the SFT demonstrations (and a baseline). It decides from what a prompt shows
 * — the memory view and the chunk — so a policy can in principle imitate it. Per sentence of the chunk:
 *
 * 1. a change report ("Day 4: Mira Kolt moved to Brel.") → the fact restated ("Mira Kolt lives in Brel.")
 *    as `update semantic ID` of the visible entry holding the old fact, else as `insert semantic`;
 * 2. a story opening ("This is the story of …") → `update core`;
 * 3. a labelled example (`… => label: X`) → `insert semantic`;
 * 4. an event with a time stamp ("Day 3: …") → `insert episodic`;
 * 5. another salient sentence (a capitalised word after the first, or a digit) → `insert semantic`;
 * 6. anything else is filler → nothing.
 *
 * With probability `noise` per sentence it errs the way a weaker writer would: a salient sentence is
 * dropped, a change is stored as a raw episodic event instead of updating the fact, and filler is stored
 * (with probability noise / 2). One `rng.next()` per sentence, so a seed fixes the response.
 */
import type { Rng } from '../../core/rng.js';
import { DAY_PREFIX, parseChangeSentence, parseFactSentence } from './data/relations.js';
import { WriterEpisode, type ChunkRecord, type EpisodeOptions } from './episode.js';
import { formatToolCalls, type CallSyntax } from './parser.js';
import { splitSentences } from './reader.js';
import type { MemalphaInstance, MemorySnapshot, ToolCall } from './types.js';
import type { MemoryView } from './view.js';

/** The scripted writer's calls for one chunk given what the prompt shows. */
export function heuristicCalls(view: MemoryView, chunk: string, rng: Rng, noise: number): ToolCall[] {
  const calls: ToolCall[] = [];
  for (const sentence of splitSentences(chunk)) {
    const roll = rng.next();
    const slip = roll < noise;
    const change = parseChangeSentence(sentence);
    if (change !== undefined) {
      if (slip) {
        calls.push({ tool: 'new_memory_insert', memory_type: 'episodic_memory', content: sentence });
        continue;
      }
      const fact = change.relation.fact(change.subject, change.value);
      const target = [...view.semantic.shown].reverse().find((entry) => {
        const stated = parseFactSentence(entry.content);
        return stated !== undefined && stated.subject === change.subject && stated.relation.name === change.relation.name;
      });
      calls.push(
        target === undefined
          ? { tool: 'new_memory_insert', memory_type: 'semantic_memory', content: fact }
          : { tool: 'memory_update', memory_type: 'semantic_memory', memory_id: target.id, new_content: fact },
      );
      continue;
    }
    if (/^This is the story of /.test(sentence)) {
      calls.push({ tool: 'memory_update', memory_type: 'core_memory', new_content: sentence });
      continue;
    }
    const labelled = /\blabel\s*:/i.test(sentence);
    const event = DAY_PREFIX.test(sentence);
    if (labelled || event || isSalient(sentence)) {
      if (!slip)
        calls.push({
          tool: 'new_memory_insert',
          memory_type: event && !labelled ? 'episodic_memory' : 'semantic_memory',
          content: sentence,
        });
    } else if (roll < noise / 2) {
      calls.push({ tool: 'new_memory_insert', memory_type: 'semantic_memory', content: sentence });
    }
  }
  return calls;
}

/** The scripted writer's response (its calls in `syntax`, one per line). */
export function heuristicResponse(view: MemoryView, chunk: string, rng: Rng, noise: number, syntax: CallSyntax): string {
  return formatToolCalls(heuristicCalls(view, chunk, rng, noise), syntax);
}

/** A sentence worth keeping: a capitalised word after the first word, or a digit. */
export function isSalient(sentence: string): boolean {
  if (/\d/.test(sentence)) return true;
  return sentence
    .split(/\s+/)
    .slice(1)
    .some((word) => /^[A-Z]/.test(word));
}

/** One prompt and the scripted writer's response to it. */
export interface DemonstrationTurn {
  readonly prompt: string;
  readonly response: string;
}

/** Run the scripted writer over a whole instance: its per-chunk turns, records and final memory. */
export function runHeuristicWriter(
  instance: MemalphaInstance,
  options: EpisodeOptions,
  rng: Rng,
  noise: number,
): { turns: DemonstrationTurn[]; records: readonly ChunkRecord[]; memory: MemorySnapshot } {
  const episode = new WriterEpisode(instance, options);
  const turns: DemonstrationTurn[] = [];
  while (!episode.done) {
    const prompt = episode.currentPrompt();
    const response = heuristicResponse(prompt.view, prompt.chunk, rng, noise, options.prompt.callSyntax);
    turns.push({ prompt: prompt.text, response });
    episode.apply(response);
  }
  return { turns, records: episode.records(), memory: episode.memory() };
}
