/**
 * Scoring a memory, and the paper's baselines under the same reader and metrics (spec §Reported results):
 * - a writer's final memory: {@link evaluateMemory} (BM25 top-k per list + core → reader → metric);
 * - `long-context`: the reader sees the last N tokens of the raw input instead of a memory;
 * - `rag-top-k`: the reader sees the k raw chunks BM25 ranks highest (paper: RAG-top2);
 * - a no-RL writer is any policy (an untrained or warm-started one) run through the environment, and
 *   `heuristic` is the scripted demonstrator's memory ({@link runHeuristicWriter}).
 * All are pure functions of their inputs except the reader / judge calls an LLM reader makes.
 */
import { metricForSource, qaScore, type QaMetric } from '../../rewards/memalpha.js';
import type { AnswerJudge } from './judge.js';
import { mapLimit } from './openai.js';
import { ChunkRetriever, MemoryRetriever, longContextPassages, type Passage, type Reader } from './reader.js';
import type { MemalphaInstance, MemorySnapshot } from './types.js';

/** The score of one question. */
export interface QuestionScore {
  readonly question: string;
  readonly answers: readonly string[];
  readonly prediction: string;
  readonly metric: QaMetric;
  /** In [0, 1]. */
  readonly score: number;
}

/** How questions are scored. */
export interface EvaluationOptions {
  /** Retrieved entries per list for memory evaluation (spec: 20). */
  readonly topK?: number;
  /** Metric per data source, over the built-in table. */
  readonly metrics?: Readonly<Record<string, QaMetric>>;
  /** Judge of `llm_judge` sources; without one they fall back to substring match. */
  readonly answerJudge?: AnswerJudge;
}

/** The metric an instance's questions are scored with. */
export function instanceMetric(instance: MemalphaInstance, metrics: Readonly<Record<string, QaMetric>> = {}): QaMetric {
  return instance.metric ?? metricForSource(instance.source, metrics);
}

/**
 * Answer every question of `instance` from `memory` with `reader` and score it. The memory is only read
 * (snapshots are deep-frozen; invariant 7). Questions are answered `reader.concurrency` at a time.
 */
export async function evaluateMemory(
  instance: MemalphaInstance,
  memory: MemorySnapshot,
  reader: Reader,
  options: EvaluationOptions = {},
): Promise<QuestionScore[]> {
  const retriever = new MemoryRetriever(memory, options.topK ?? 20);
  return answerAndScore(instance, (question) => retriever.passages(question), reader, options);
}

/** The baselines that replace the memory by raw input. */
export type BaselineKind = 'long-context' | 'rag-top-k';

/** Options of {@link baselineScores}. */
export interface BaselineOptions extends EvaluationOptions {
  /** long-context: tokens of the input's tail the reader sees (default 4096). */
  readonly contextTokens?: number;
  /** rag-top-k: chunks retrieved (default 2, the paper's RAG-top2). */
  readonly ragTopK?: number;
}

/** Score `instance` under a raw-input baseline with `reader`. */
export async function baselineScores(
  instance: MemalphaInstance,
  kind: BaselineKind,
  reader: Reader,
  options: BaselineOptions = {},
): Promise<QuestionScore[]> {
  if (kind === 'long-context') {
    const passages = longContextPassages(instance.chunks, options.contextTokens ?? 4096);
    return answerAndScore(instance, () => passages, reader, options);
  }
  const retriever = new ChunkRetriever(instance.chunks, options.ragTopK ?? 2);
  return answerAndScore(instance, (question) => retriever.passages(question), reader, options);
}

/** Mean score of a list of question scores (0 for none) — r1 of an instance. */
export function meanScore(scores: readonly QuestionScore[]): number {
  return scores.length === 0 ? 0 : scores.reduce((a, s) => a + s.score, 0) / scores.length;
}

async function answerAndScore(
  instance: MemalphaInstance,
  passagesFor: (question: string) => readonly Passage[],
  reader: Reader,
  options: EvaluationOptions,
): Promise<QuestionScore[]> {
  const metric = instanceMetric(instance, options.metrics);
  const predictions = await mapLimit(instance.questions, reader.concurrency ?? 1, (qa) =>
    reader.answer({ question: qa.question, metric, source: instance.source }, passagesFor(qa.question)),
  );
  const judged =
    metric === 'llm_judge' && options.answerJudge
      ? await options.answerJudge.judge(
          instance.questions.map((qa, i) => ({ question: qa.question, answers: qa.answers, prediction: predictions[i] })),
        )
      : undefined;
  return instance.questions.map((qa, i) => ({
    question: qa.question,
    answers: qa.answers,
    prediction: predictions[i],
    metric,
    score: qaScore(metric, predictions[i], qa.answers, judged?.[i]),
  }));
}
