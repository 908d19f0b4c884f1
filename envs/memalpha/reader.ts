/**
 * The frozen reader (spec §Reader): per question, BM25 over the semantic contents and, separately, over
 * the episodic contents (lowercase word tokens), the top-k (20) of each, plus the whole core; an answerer
 * then answers from those passages alone. Retrieval and answering are separate so the baselines reuse them:
 * RAG-top-k retrieves raw chunks with the same BM25, long-context hands the answerer the input's tail.
 *
 * BM25 is MiniSearch's (lucaong/minisearch 7.2), configured as Okapi BM25: k1 = 1.2, b = 0.75, no BM25+ δ,
 * Lucene's non-negative idf ln(1 + (N − n + 0.5)/(n + 0.5)). Two properties of that engine, kept as they are:
 * a document's length |d| is its number of *distinct* terms (avgdl likewise), and it multiplies a score by
 * the number of distinct query terms matched — divided out again here, so scores are plain BM25 sums:
 *   score(d, q) = Σ_{t ∈ q} idf(t) · f(t, d)·(k1 + 1) / (f(t, d) + k1·(1 − b + b·|d|/avgdl))
 *
 * Answerers:
 * - {@link ExtractiveReader} (built-in, deterministic): splits passages into sentences and picks the one
 *   sharing the most content words with the question (ties: newer information first — the core, then the
 *   most recently written entry, then the later sentence — then BM25 rank); the answer is that sentence's
 *   words that are not in the question. Classification questions (exact-label sources) take a vote over
 *   retrieved sentences that carry `label: X`; summary questions (keyword-hit sources) get every passage.
 * - {@link LlmReader}: an OpenAI-compatible chat endpoint answers from the same passages.
 * Readers receive a deep-frozen snapshot and passages as strings: they cannot change the memory (invariant 7).
 */
import MiniSearch from 'minisearch';
import type { QaMetric } from '../../rewards/memalpha.js';
import { ChatClient, type ChatEndpoint, type FetchLike } from './openai.js';
import { lastTokens } from './tokens.js';
import type { MemorySnapshot } from './types.js';

// ─── Text ─────────────────────────────────────────────────────────────────────────────────────────────

/** Word tokens for BM25: maximal runs of letters, digits and `_` (Unicode `\w`), lowercased. */
export function bm25Tokens(text: string): string[] {
  return (text.match(/[\p{L}\p{N}_]+/gu) ?? []).map((t) => t.toLowerCase());
}

/** Words the extractive answerer ignores when matching a sentence to a question. */
const STOPWORDS = new Set(
  (
    'a an the is are was were be been being am of in on at to for as by with and or but not no nor so ' +
    'what where when who whom whose which why how does do did done has have had having that this these those ' +
    'it its from into about than then there their they them he she his her him i me my we our you your ' +
    's t d ll re ve m can could would should will shall may might must any some all each every'
  ).split(' '),
);

/** Lowercase, and drop a plural / third-person `s` (not `ss`) from words longer than three letters. */
export function stem(word: string): string {
  const w = word.toLowerCase();
  return w.length > 3 && w.endsWith('s') && !w.endsWith('ss') ? w.slice(0, -1) : w;
}

/** The distinct stems of the non-stopword tokens of `text`. */
export function contentStems(text: string): Set<string> {
  const out = new Set<string>();
  for (const token of bm25Tokens(text)) if (!STOPWORDS.has(token)) out.add(stem(token));
  return out;
}

/** Sentences of a passage: split at line breaks and after `.`, `!` or `?` followed by whitespace. */
export function splitSentences(text: string): string[] {
  return text
    .split(/\n+/)
    .flatMap((line) => line.split(/(?<=[.!?])\s+/))
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

// ─── BM25 ─────────────────────────────────────────────────────────────────────────────────────────────

/** Okapi BM25 parameters. */
export interface Bm25Params {
  readonly k1: number;
  readonly b: number;
}

/** Okapi BM25 with k1 = 1.2, b = 0.75. */
export const DEFAULT_BM25: Bm25Params = { k1: 1.2, b: 0.75 };

/** A BM25 index over a fixed list of documents (built once, queried many times). */
export class Bm25Index {
  private readonly index: MiniSearch<{ id: number; text: string }>;
  readonly size: number;

  constructor(documents: readonly string[], params: Bm25Params = DEFAULT_BM25) {
    this.size = documents.length;
    this.index = new MiniSearch<{ id: number; text: string }>({
      fields: ['text'],
      idField: 'id',
      tokenize: (text) => text.match(/[\p{L}\p{N}_]+/gu) ?? [],
      processTerm: (term) => term.toLowerCase(),
      searchOptions: { bm25: { k: params.k1, b: params.b, d: 0 }, prefix: false, fuzzy: false, combineWith: 'OR' },
    });
    this.index.addAll(documents.map((text, id) => ({ id, text })));
  }

  /**
   * The `k` best documents for `query` as {index, score}, best first; ties go to the later document.
   * Documents sharing no term with the query are not returned.
   */
  search(query: string, k: number): { index: number; score: number }[] {
    if (this.size === 0 || k <= 0) return [];
    const hits = this.index
      .search(query)
      .map((hit) => ({ index: hit.id as number, score: hit.score / Math.max(1, hit.queryTerms.length) }));
    hits.sort((a, b) => b.score - a.score || b.index - a.index);
    return hits.slice(0, k);
  }
}

// ─── Passages ─────────────────────────────────────────────────────────────────────────────────────────

/** One piece of text the answerer may read. */
export interface Passage {
  readonly text: string;
  readonly origin: 'core' | 'semantic' | 'episodic' | 'raw';
  /** Larger = newer information (core: +∞; entries: write counter; raw chunks: chunk index). */
  readonly recency: number;
  /** Retrieval rank within its list, 0 = best (the core and long-context tails: 0). */
  readonly rank: number;
  /** Entry id, for memory passages. */
  readonly id?: string;
}

/** A question as the reader sees it. */
export interface ReaderQuestion {
  readonly question: string;
  /** How the answer will be scored; answerers shape their answer to it. */
  readonly metric: QaMetric;
  readonly source: string;
}

/** Retrieval over a final memory: two BM25 indexes built once, queried per question. */
export class MemoryRetriever {
  private readonly semantic: Bm25Index;
  private readonly episodic: Bm25Index;

  constructor(
    readonly memory: MemorySnapshot,
    readonly topK = 20,
  ) {
    this.semantic = new Bm25Index(memory.semantic.map((e) => e.content));
    this.episodic = new Bm25Index(memory.episodic.map((e) => e.content));
  }

  /** The core (when not empty), then the top-k semantic and the top-k episodic entries for `question`. */
  passages(question: string): Passage[] {
    const out: Passage[] = [];
    if (this.memory.core.length > 0) out.push({ text: this.memory.core, origin: 'core', recency: Number.POSITIVE_INFINITY, rank: 0 });
    this.semantic.search(question, this.topK).forEach((hit, rank) => {
      const entry = this.memory.semantic[hit.index];
      out.push({ text: entry.content, origin: 'semantic', recency: entry.written, rank, id: entry.id });
    });
    this.episodic.search(question, this.topK).forEach((hit, rank) => {
      const entry = this.memory.episodic[hit.index];
      out.push({ text: entry.content, origin: 'episodic', recency: entry.written, rank, id: entry.id });
    });
    return out;
  }
}

/** RAG over the raw chunks (baseline): the top-k chunks by the same BM25. */
export class ChunkRetriever {
  private readonly index: Bm25Index;

  constructor(
    readonly chunks: readonly string[],
    readonly topK: number,
  ) {
    this.index = new Bm25Index(chunks);
  }

  passages(question: string): Passage[] {
    return this.index
      .search(question, this.topK)
      .map((hit, rank) => ({ text: this.chunks[hit.index], origin: 'raw', recency: hit.index, rank }));
  }
}

/** Long-context baseline: the last `maxTokens` tokens of the raw input (chunks joined by blank lines). */
export function longContextPassages(chunks: readonly string[], maxTokens: number): Passage[] {
  const tail = lastTokens(chunks.join('\n\n'), maxTokens);
  return tail.length > 0 ? [{ text: tail, origin: 'raw', recency: 0, rank: 0 }] : [];
}

// ─── Answerers ────────────────────────────────────────────────────────────────────────────────────────

/** Answers a question from passages. Implementations must not keep or change what they are given. */
export interface Reader {
  readonly name: string;
  /** Questions answered at once by evaluation (default 1). */
  readonly concurrency?: number;
  answer(question: ReaderQuestion, passages: readonly Passage[]): Promise<string>;
}

/** A `label: X` (or `label = X`) annotation in a sentence. */
const LABEL = /\blabel\s*[:=]\s*([\p{L}\p{N}_-]+)/iu;

interface Sentence {
  readonly text: string;
  readonly passage: Passage;
  /** Position of the sentence in its passage. */
  readonly position: number;
}

/** The built-in deterministic reader (see the module comment for its rules). */
export class ExtractiveReader implements Reader {
  readonly name = 'extractive';

  async answer(question: ReaderQuestion, passages: readonly Passage[]): Promise<string> {
    return extractiveAnswer(question, passages);
  }
}

/**
 * The built-in reader's answer, synchronously. Examples (passages "Mira Kolt lives in Tavon." written 1 and
 * "Mira Kolt lives in Brel." written 2): "Where does Mira Kolt live?" → "Brel" (both share {mira, kolt,
 * live}; the newer wins). A `keyword_hit` question gets every passage joined by newlines; an `exact_label`
 * question gets the label with the largest Σ overlap² over sentences carrying `label: X`.
 */
export function extractiveAnswer(question: ReaderQuestion, passages: readonly Passage[]): string {
  if (question.metric === 'keyword_hit') return passages.map((p) => p.text).join('\n');
  const asked = contentStems(question.question);
  const sentences: Sentence[] = passages.flatMap((passage) =>
    splitSentences(passage.text).map((text, position) => ({ text, passage, position })),
  );
  if (question.metric === 'exact_label') return voteLabel(asked, sentences);
  let best: { sentence: Sentence; overlap: number } | undefined;
  for (const sentence of sentences) {
    const overlap = countShared(asked, sentence.text);
    if (overlap === 0) continue;
    if (best === undefined || betterSentence(sentence, overlap, best.sentence, best.overlap)) best = { sentence, overlap };
  }
  if (best === undefined) return '';
  const words = best.sentence.text.match(/[\p{L}\p{N}_]+/gu) ?? [];
  const rest = words.filter((w) => !STOPWORDS.has(w.toLowerCase()) && !asked.has(stem(w)));
  return rest.length > 0 ? rest.join(' ') : best.sentence.text;
}

function voteLabel(asked: ReadonlySet<string>, sentences: readonly Sentence[]): string {
  const votes = new Map<string, { score: number; sentence: Sentence; overlap: number }>();
  for (const sentence of sentences) {
    const label = LABEL.exec(sentence.text)?.[1];
    if (label === undefined) continue;
    const overlap = countShared(asked, sentence.text.replace(LABEL, ' '));
    if (overlap === 0) continue;
    const vote = votes.get(label.toLowerCase());
    if (vote === undefined) votes.set(label.toLowerCase(), { score: overlap * overlap, sentence, overlap });
    else {
      vote.score += overlap * overlap;
      if (betterSentence(sentence, overlap, vote.sentence, vote.overlap)) Object.assign(vote, { sentence, overlap });
    }
  }
  let winner: { label: string; score: number; sentence: Sentence; overlap: number } | undefined;
  for (const [label, vote] of votes) {
    if (
      winner === undefined ||
      vote.score > winner.score ||
      (vote.score === winner.score && betterSentence(vote.sentence, vote.overlap, winner.sentence, winner.overlap))
    ) {
      winner = { label, ...vote };
    }
  }
  return winner?.label ?? '';
}

/** Order of candidate sentences: more shared words, then newer, then better-ranked, then later in its passage. */
function betterSentence(a: Sentence, aOverlap: number, b: Sentence, bOverlap: number): boolean {
  if (aOverlap !== bOverlap) return aOverlap > bOverlap;
  if (a.passage.recency !== b.passage.recency) return a.passage.recency > b.passage.recency;
  if (a.passage.rank !== b.passage.rank) return a.passage.rank < b.passage.rank;
  return a.position > b.position;
}

function countShared(asked: ReadonlySet<string>, text: string): number {
  let shared = 0;
  for (const s of contentStems(text)) if (asked.has(s)) shared++;
  return shared;
}

/** What an LLM reader is told, per metric. */
const ANSWER_STYLE: Record<QaMetric, string> = {
  substring: 'Answer with the answer only: a few words, no explanation.',
  llm_judge: 'Answer briefly, in one sentence at most.',
  exact_label: 'Answer with the label only, exactly as written in memory.',
  keyword_hit: 'Write a short summary that names every important person, place, object and event.',
};

/** The chat messages an LLM reader sends for one question. */
export function readerMessages(question: ReaderQuestion, passages: readonly Passage[]): { role: 'system' | 'user'; content: string }[] {
  const section = (origin: Passage['origin'], title: string) => {
    const texts = passages.filter((p) => p.origin === origin).map((p) => `- ${p.text}`);
    return texts.length > 0 ? `${title}:\n${texts.join('\n')}\n\n` : '';
  };
  const context =
    section('core', 'Core memory') +
    section('semantic', 'Semantic memory') +
    section('episodic', 'Episodic memory') +
    section('raw', 'Text');
  return [
    {
      role: 'system',
      content: `You answer questions using only the memory given to you. If it does not contain the answer, give your best guess. ${ANSWER_STYLE[question.metric]}`,
    },
    { role: 'user', content: `${context.length > 0 ? context : 'The memory is empty.\n\n'}Question: ${question.question}\nAnswer:` },
  ];
}

/** A reader backed by an OpenAI-compatible chat endpoint. */
export class LlmReader implements Reader {
  readonly name = 'llm';
  readonly client: ChatClient;
  readonly concurrency: number;

  constructor(endpoint: ChatEndpoint, fetchImpl?: FetchLike) {
    this.client = new ChatClient(endpoint, 'reader', fetchImpl);
    this.concurrency = endpoint.concurrency;
  }

  async answer(question: ReaderQuestion, passages: readonly Passage[]): Promise<string> {
    const text = await this.client.complete(readerMessages(question, passages));
    return text.replace(/^\s*answer\s*:\s*/i, '').trim();
  }
}
