/**
 * Judges of Mem-α (spec §Reward):
 * - content judges for r4 — is what a call wrote a valid entry of its memory? core: not meta-talk or a
 *   placeholder; semantic: knowledge (not an event report, not meta-talk); episodic: an event with its time.
 *   {@link RuleContentJudge} (built-in, deterministic) or {@link LlmContentJudge} (an OpenAI-compatible endpoint);
 * - answer judges for sources scored `llm_judge` (long conversations): {@link LlmAnswerJudge}; without one
 *   the reward falls back to substring match.
 * Scores are in [0, 1]; a judge returns one score per item, in order.
 */
import { ChatClient, mapLimit, type ChatEndpoint, type FetchLike } from './openai.js';
import type { MemoryType, ToolName } from './types.js';

/** One written content to judge. */
export interface ContentJudgeItem {
  readonly tool: Exclude<ToolName, 'memory_delete'>;
  readonly memoryType: MemoryType;
  /** The content as written (trimmed; a core rewrite after the cap). */
  readonly content: string;
}

/** Judges written contents for r4. */
export interface ContentJudge {
  readonly name: string;
  judge(items: readonly ContentJudgeItem[]): Promise<number[]>;
}

/** A placeholder instead of content (or an instruction's slot name copied verbatim). */
const PLACEHOLDER =
  /^(?:n\/?a|none|null|nil|empty|todo|tbd|placeholder|unknown|nothing(?: new)?|no (?:new |relevant )?(?:information|info|facts?|events?|updates?|content)|text|fact|time event|content|id|\.{2,}|…|-+|\?+|x+)\.?$|^[<[{][^<>[\]{}]*[>\]}]$/i;

/** Talk about the memory or the task instead of content. */
const META_TALK =
  /\b(?:i will|i'll|i am going to|let me|as an ai|language model|memory (?:has been |was |is )?updated|updat(?:e|ing) (?:the )?memory|(?:store|stored|storing|save|saved|saving|note|noted|noting|remember|remembering) (?:this|the following)|this chunk|the chunk|tool calls?|no changes?|nothing to (?:store|add|remember|update))\b/i;

/** A stated time: day/week N, a date, a clock time, a year, or a time word. */
const TIME =
  /\b(?:(?:day|week|month|year|session|chunk)\s*\d+|\d{4}-\d{2}-\d{2}|\d{1,2}:\d{2}|(?:1[0-9]|20)\d{2}|yesterday|today|tonight|tomorrow|morning|afternoon|evening|night|noon|midnight|monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march|april|june|july|august|september|october|november|december|spring|summer|autumn|winter)\b/i;

/** Content that opens with a time stamp is an event report. */
const EVENT_OPENING = /^\[?\s*(?:(?:day|week|session|chunk)\s*\d+|\d{4}-\d{2}-\d{2}|\d{1,2}:\d{2})\b/i;

/**
 * Why `item` is not a valid entry under the built-in rules, or undefined when it is. Rules, in order:
 * non-empty; not a placeholder (`none`, `TODO`, `<fact>`, `...`); not meta-talk (`I will remember this`,
 * `memory updated`); at least two words; semantic entries do not open with a time stamp (`Day 3: …` is an
 * event); episodic entries state a time (`Day 3`, `2024-05-01`, `09:30`, a year, `morning`, a weekday …).
 * Examples: episodic "Day 3: Mira Kolt found the lantern in Brel." → valid; episodic "Mira Kolt found the
 * lantern." → "episodic entry states no time"; core "I will remember this." → "meta-talk".
 */
export function contentProblem(item: ContentJudgeItem): string | undefined {
  const text = item.content.trim();
  if (text.length === 0) return 'empty';
  if (PLACEHOLDER.test(text)) return 'placeholder';
  if (META_TALK.test(text)) return 'meta-talk';
  if ((text.match(/[\p{L}\p{N}]+/gu) ?? []).length < 2) return 'fewer than two words';
  if (item.memoryType === 'semantic_memory' && EVENT_OPENING.test(text))
    return 'semantic entry opens with a time stamp (an event belongs in episodic memory)';
  if (item.memoryType === 'episodic_memory' && !TIME.test(text)) return 'episodic entry states no time';
  return undefined;
}

/** The built-in content judge: 1 when {@link contentProblem} finds nothing, else 0. */
export class RuleContentJudge implements ContentJudge {
  readonly name = 'rules';

  async judge(items: readonly ContentJudgeItem[]): Promise<number[]> {
    return items.map((item) => (contentProblem(item) === undefined ? 1 : 0));
  }
}

const CONTENT_RUBRIC: Record<MemoryType, string> = {
  core_memory:
    'a concise paragraph of durable information about the task or the people in it — not talk about the memory or the task, not a placeholder',
  semantic_memory:
    'a piece of knowledge (a fact, a definition, a labelled example) — not an event report, not talk about the memory, not a placeholder',
  episodic_memory:
    'an event together with the time it happened (a date, a day or a moment named in the text) — not talk about the memory, not a placeholder',
};

/** The chat messages an LLM content judge sends for one item. */
export function contentJudgeMessages(item: ContentJudgeItem): { role: 'system' | 'user'; content: string }[] {
  return [
    { role: 'system', content: 'You check entries an agent wrote into its memory. Reply with one word: VALID or INVALID.' },
    {
      role: 'user',
      content: `Memory: ${item.memoryType}\nA valid entry is ${CONTENT_RUBRIC[item.memoryType]}.\nEntry: ${item.content}\nIs this entry valid?`,
    },
  ];
}

/** Content judge backed by an OpenAI-compatible chat endpoint: 1 for VALID, 0 for INVALID or anything else. */
export class LlmContentJudge implements ContentJudge {
  readonly name = 'llm';
  readonly client: ChatClient;

  constructor(endpoint: ChatEndpoint, fetchImpl?: FetchLike) {
    this.client = new ChatClient(endpoint, 'judge', fetchImpl);
  }

  async judge(items: readonly ContentJudgeItem[]): Promise<number[]> {
    return mapLimit(items, this.client.endpoint.concurrency, async (item) =>
      verdict(await this.client.complete(contentJudgeMessages(item)), 'INVALID', 'VALID'),
    );
  }
}

/** One answer to judge against its gold answers. */
export interface AnswerJudgeItem {
  readonly question: string;
  readonly answers: readonly string[];
  readonly prediction: string;
}

/** Judges answers of `llm_judge` sources: 1 correct, 0 wrong. */
export interface AnswerJudge {
  readonly name: string;
  judge(items: readonly AnswerJudgeItem[]): Promise<number[]>;
}

/** The chat messages an LLM answer judge sends for one item. */
export function answerJudgeMessages(item: AnswerJudgeItem): { role: 'system' | 'user'; content: string }[] {
  return [
    {
      role: 'system',
      content:
        'You grade answers. Compare the generated answer with the gold answer: it is CORRECT if it states the same thing (wording may differ, extra detail is fine), WRONG otherwise. Reply with one word: CORRECT or WRONG.',
    },
    { role: 'user', content: `Question: ${item.question}\nGold answer: ${item.answers.join(' | ')}\nGenerated answer: ${item.prediction}` },
  ];
}

/** Answer judge backed by an OpenAI-compatible chat endpoint. */
export class LlmAnswerJudge implements AnswerJudge {
  readonly name = 'llm';
  readonly client: ChatClient;

  constructor(endpoint: ChatEndpoint, fetchImpl?: FetchLike) {
    this.client = new ChatClient(endpoint, 'judge', fetchImpl);
  }

  async judge(items: readonly AnswerJudgeItem[]): Promise<number[]> {
    return mapLimit(items, this.client.endpoint.concurrency, async (item) =>
      verdict(await this.client.complete(answerJudgeMessages(item)), 'WRONG', 'CORRECT'),
    );
  }
}

/** 1 when the reply says `yes` (and not `no`, checked first since `INVALID` contains `VALID`), else 0. */
function verdict(reply: string, no: string, yes: string): number {
  if (new RegExp(`\\b${no}\\b`, 'i').test(reply)) return 0;
  return new RegExp(`\\b${yes}\\b`, 'i').test(reply) ? 1 : 0;
}
