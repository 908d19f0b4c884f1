/**
 * Reward of the Mem-α memory writer (Wang et al. 2025, arXiv 2509.25911; spec §Reward). One rollout j of an
 * instance with n chunks yields n training samples; sample t gets
 *
 *   R_{j,t} = r1_j + r2_{j,t} + β·r3_j + γ·r4_{j,t}          (β = 0.05, γ = 0.1 in the paper)
 *
 *   r1  rollout  mean QA score of the frozen reader over the instance's questions (metric per data source)
 *   r2  chunk    fraction of the chunk's parsed calls that succeeded (duplicates skipped ≠ success); 0 without calls
 *   r3  rollout  compression 1 − |M_final| / Σ_t |c_t| in tokens (not clipped: negative when memory > input)
 *   r4  chunk    mean validity of what the chunk's calls wrote (deletes score 0 unless `scoreDeletes`); 0 without calls
 *
 * Everything here is pure: answers, reader predictions and judge verdicts come in as data, so a logged
 * episode can be re-scored and every doc-comment example is replayed by test/unit/memalpha/reward.test.ts.
 * Token counts are byte-tokenizer tokens (1 token = 1 UTF-8 byte), the unit the environment uses throughout.
 */
import type { Reward } from './types.js';

// ─── QA metrics (r1) ──────────────────────────────────────────────────────────────────────────────────

/** How a reader's answer is scored against the gold answers; chosen per data source (spec §Reward r1). */
export type QaMetric = 'substring' | 'keyword_hit' | 'exact_label' | 'llm_judge';

/** Every QA metric, for schemas and messages. */
export const QA_METRICS: readonly QaMetric[] = ['substring', 'keyword_hit', 'exact_label', 'llm_judge'];

/**
 * The metric of each known data source (paper's training and evaluation sources, and this project's
 * generators). Lookup is case-insensitive; `synthetic/ar` etc. are the built-in generators' sources.
 */
export const DEFAULT_SOURCE_METRICS: Readonly<Record<string, QaMetric>> = {
  squad: 'substring',
  hotpotqa: 'substring',
  perltqa: 'substring',
  lme_train: 'substring',
  booksum: 'keyword_hit',
  'pubmed-rct': 'exact_label',
  pubmed_rct: 'exact_label',
  'trec-coarse': 'exact_label',
  trec_coarse: 'exact_label',
  nlu: 'exact_label',
  longmemeval: 'llm_judge',
  lme: 'llm_judge',
  'synthetic/ar': 'substring',
  'synthetic/ttl': 'exact_label',
  'synthetic/lru': 'keyword_hit',
  'synthetic/cr': 'substring',
};

/**
 * The metric for `source`: an explicit `overrides[source]` first, then {@link DEFAULT_SOURCE_METRICS}
 * (both case-insensitive), else `substring`.
 * Example: `metricForSource('BookSum')` → `'keyword_hit'`; `metricForSource('my-data', { 'my-data': 'exact_label' })` → `'exact_label'`.
 */
export function metricForSource(source: string, overrides: Readonly<Record<string, QaMetric>> = {}): QaMetric {
  const key = source.toLowerCase();
  for (const [name, metric] of Object.entries(overrides)) if (name.toLowerCase() === key) return metric;
  return DEFAULT_SOURCE_METRICS[key] ?? 'substring';
}

/** ASCII punctuation (the set SQuAD-style normalisation removes). */
const PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;

/**
 * SQuAD-style answer normalisation: lowercase, drop ASCII punctuation, drop the articles a / an / the,
 * collapse whitespace. Example: `normalizeAnswer("The  Eiffel-Tower!")` → `"eiffeltower"`.
 */
export function normalizeAnswer(text: string): string {
  return text
    .toLowerCase()
    .replace(PUNCTUATION, '')
    .replace(/\b(a|an|the)\b/g, ' ')
    .split(/\s+/)
    .filter((w) => w.length > 0)
    .join(' ');
}

/**
 * Substring match: 1 if some gold answer, normalised, is contained in the normalised prediction (an empty
 * normalised gold never matches). Example: prediction `"She lives in Tavon."`, answers `["tavon"]` → 1;
 * answers `["Brel"]` → 0.
 */
export function substringMatch(prediction: string, answers: readonly string[]): number {
  const predicted = normalizeAnswer(prediction);
  return answers.some((answer) => {
    const gold = normalizeAnswer(answer);
    return gold.length > 0 && predicted.includes(gold);
  })
    ? 1
    : 0;
}

/**
 * The keywords of keyword-hit answers: every gold answer split at commas (the Mem-α summary format is one
 * comma-separated string), normalised, empty ones dropped, duplicates removed.
 */
export function answerKeywords(answers: readonly string[]): string[] {
  const keywords = answers.flatMap((answer) => answer.split(',')).map(normalizeAnswer);
  return [...new Set(keywords.filter((k) => k.length > 0))];
}

/**
 * Keyword-hit ratio (summaries): the fraction of {@link answerKeywords} contained in the normalised
 * prediction; 0 when there are no keywords. Example: prediction `"Mira found the lantern in Brel."`,
 * answers `["Mira, lantern, Tavon, Brel"]` → 3/4 = 0.75.
 */
export function keywordHitRatio(prediction: string, answers: readonly string[]): number {
  const keywords = answerKeywords(answers);
  if (keywords.length === 0) return 0;
  const predicted = normalizeAnswer(prediction);
  return keywords.filter((k) => predicted.includes(k)).length / keywords.length;
}

/**
 * Exact label (classification): 1 if the normalised prediction equals a normalised gold label.
 * Example: prediction `" Sport."`, answers `["sport"]` → 1; prediction `"sport or music"` → 0.
 */
export function exactLabelMatch(prediction: string, answers: readonly string[]): number {
  const predicted = normalizeAnswer(prediction);
  return answers.some((answer) => normalizeAnswer(answer) === predicted && predicted.length > 0) ? 1 : 0;
}

/**
 * Score one answer with `metric`, in [0, 1]. `llm_judge` uses the judge's verdict `judged` (0 or 1, from
 * an LLM answer judge run by the caller); without one it falls back to substring match.
 * Examples: `qaScore('exact_label', 'music', ['sport'])` → 0; `qaScore('llm_judge', 'x', ['y'], 1)` → 1.
 */
export function qaScore(metric: QaMetric, prediction: string, answers: readonly string[], judged?: number): number {
  switch (metric) {
    case 'substring':
      return substringMatch(prediction, answers);
    case 'keyword_hit':
      return keywordHitRatio(prediction, answers);
    case 'exact_label':
      return exactLabelMatch(prediction, answers);
    case 'llm_judge':
      return judged === undefined ? substringMatch(prediction, answers) : clamp01(judged);
  }
}

// ─── The four terms ───────────────────────────────────────────────────────────────────────────────────

/**
 * One parsed tool call as the reward sees it (spec §Tools):
 * - `failed`: malformed, or rejected by the memory (bad type, unknown id, empty content, core insert …);
 * - `skipped`: a duplicate insert (well-formed, nothing written — not a success for r2);
 * - `write`: a successful insert or update, with the content judge's `validity` ∈ [0, 1];
 * - `delete`: a successful delete (an unknown id included: the memory reports success, no change).
 */
export type CallOutcome =
  | { readonly kind: 'failed' }
  | { readonly kind: 'skipped' }
  | { readonly kind: 'write'; readonly validity: number }
  | { readonly kind: 'delete' };

/**
 * r1: mean of the per-question scores (each in [0, 1]); 0 for an instance without questions.
 * Example: scores [1, 0, 1, 1] → 0.75.
 */
export function r1QaAccuracy(scores: readonly number[]): number {
  if (scores.length === 0) return 0;
  return scores.reduce((a, s) => a + clamp01(s), 0) / scores.length;
}

/**
 * r2 of one chunk: successful calls (`write`, `delete`) over all parsed calls; 0 with no calls.
 * Example: [write, write, failed] → 2/3; [delete, skipped] → 1/2; [] → 0.
 */
export function r2ToolSuccess(calls: readonly CallOutcome[]): number {
  if (calls.length === 0) return 0;
  return calls.filter((c) => c.kind === 'write' || c.kind === 'delete').length / calls.length;
}

/**
 * r3: compression 1 − memoryTokens / inputTokens, exactly, unclipped (negative when the memory holds
 * more tokens than the chunks it was built from); 0 when no input was read (inputTokens = 0).
 * Example: 50 memory tokens from 200 input tokens → 0.75; 300 from 200 → −0.5.
 */
export function r3Compression(memoryTokens: number, inputTokens: number): number {
  if (inputTokens <= 0) return 0;
  return 1 - memoryTokens / inputTokens;
}

/**
 * r4 of one chunk: mean over its calls of the written content's validity; `failed` and `skipped` score 0,
 * `delete` scores 0 as in the original (set `scoreDeletes` to score a successful delete 1); 0 with no calls.
 * Example: [write(1), write(0), failed] → 1/3; [delete, skipped] → 0, or 1/2 with scoreDeletes.
 */
export function r4ContentValidity(calls: readonly CallOutcome[], scoreDeletes = false): number {
  if (calls.length === 0) return 0;
  let sum = 0;
  for (const call of calls) {
    if (call.kind === 'write') sum += clamp01(call.validity);
    else if (call.kind === 'delete' && scoreDeletes) sum += 1;
  }
  return sum / calls.length;
}

// ─── The episode reward ───────────────────────────────────────────────────────────────────────────────

/** Switches of the reward (spec §Reward; ablations β ∈ {0, 0.2, 0.4}, γ ∈ {0}). */
export interface MemalphaRewardOptions {
  /** Weight of r3 (compression). Paper: 0.05. */
  readonly beta: number;
  /** Weight of r4 (content validity). Paper: 0.1. */
  readonly gamma: number;
  /** Score a successful delete 1 in r4 instead of the original's 0. */
  readonly scoreDeletes: boolean;
  /**
   * What `Reward.total` is: `r1` (QA accuracy, in [0, 1], so `total ≥ 1` means every question right) or
   * `mean-turn` (mean of the per-chunk rewards, up to 2 + β + γ). Per-chunk training uses `turnRewards`.
   */
  readonly total: 'r1' | 'mean-turn';
}

/** The paper's setting: β = 0.05, γ = 0.1, deletes score 0, total = r1. */
export const DEFAULT_MEMALPHA_REWARD: MemalphaRewardOptions = { beta: 0.05, gamma: 0.1, scoreDeletes: false, total: 'r1' };

/** What one finished rollout contributes to its reward. */
export interface MemalphaOutcome {
  /** Data source of the instance (names the `qa/<source>` part). */
  readonly source: string;
  /** The calls of each chunk the writer processed, in order (one entry per chunk sample). */
  readonly chunks: ReadonlyArray<readonly CallOutcome[]>;
  /** Score of each question, in [0, 1]. */
  readonly qaScores: readonly number[];
  /** |M_final|: tokens of core + all entry contents. */
  readonly memoryTokens: number;
  /** Σ_t |c_t| over the chunks the writer processed. */
  readonly inputTokens: number;
}

/**
 * The reward of one rollout: per-chunk `turnRewards` R_{j,t} = r1 + r2_t + β·r3 + γ·r4_t and parts
 * `r1`, `r2_mean`, `r3`, `r4_mean`, `qa/<source>` (= r1), `memory_tokens`, `input_tokens`, `calls`,
 * `failed_calls`, `skipped_calls`, `chunks`. Every chunk sample shares r1 and r3 (spec invariant 4).
 *
 * Worked example (β = 0.05, γ = 0.1, scoreDeletes off, total r1): source `squad`, QA scores [1, 0, 1, 1],
 * 50 memory tokens from 200 input tokens, chunk 1 calls [write(1), write(0), failed], chunk 2 calls
 * [delete, skipped]:
 * ```
 * r1 = 0.75, r3 = 1 − 50/200 = 0.75
 * chunk 1: r2 = 2/3, r4 = 1/3  →  R_1 = 0.75 + 2/3 + 0.05·0.75 + 0.1·(1/3) = 1.4875
 * chunk 2: r2 = 1/2, r4 = 0    →  R_2 = 0.75 + 1/2 + 0.0375 + 0           = 1.2875
 * total = r1 = 0.75; r2_mean = 7/12; r4_mean = 1/6; qa/squad = 0.75
 * ```
 * With `scoreDeletes` chunk 2 has r4 = 1/2 and R_2 = 1.3375; with total `mean-turn`, total = 1.3875.
 */
export function memalphaReward(outcome: MemalphaOutcome, options: MemalphaRewardOptions = DEFAULT_MEMALPHA_REWARD): Reward {
  const r1 = r1QaAccuracy(outcome.qaScores);
  const r3 = r3Compression(outcome.memoryTokens, outcome.inputTokens);
  const r2s = outcome.chunks.map((calls) => r2ToolSuccess(calls));
  const r4s = outcome.chunks.map((calls) => r4ContentValidity(calls, options.scoreDeletes));
  const turnRewards = r2s.map((r2, t) => r1 + r2 + options.beta * r3 + options.gamma * r4s[t]);
  const allCalls = outcome.chunks.flat();
  const total = options.total === 'r1' ? r1 : mean(turnRewards);
  return {
    total,
    parts: {
      r1,
      r2_mean: mean(r2s),
      r3,
      r4_mean: mean(r4s),
      [`qa/${outcome.source}`]: r1,
      memory_tokens: outcome.memoryTokens,
      input_tokens: outcome.inputTokens,
      calls: allCalls.length,
      failed_calls: allCalls.filter((c) => c.kind === 'failed').length,
      skipped_calls: allCalls.filter((c) => c.kind === 'skipped').length,
      chunks: outcome.chunks.length,
    },
    turnRewards,
  };
}

// ─── GRPO group (reference) ───────────────────────────────────────────────────────────────────────────

/**
 * Reference GRPO advantages of one Mem-α group (spec §Optimisation, invariant 5): the group is every chunk
 * sample of every rollout of the instance, A_{j,t} = (R_{j,t} − mean) / (std + 1e-6), std with Bessel's
 * correction (torch.std); `rollouts[j]` are rollout j's turnRewards. A group whose rewards are all equal
 * (or that has one sample) gets advantage 0 exactly — computed, `(R − mean)/1e-6` would turn the rounding
 * error of the mean into a large advantage. Samples are never duplicated to pad a group.
 * Example: rollouts [[1, 3], [2]] → mean 2, std 1 → [[−0.999999, 0.999999], [0]].
 */
export function groupAdvantages(rollouts: ReadonlyArray<readonly number[]>): number[][] {
  const all = rollouts.flat();
  if (all.length < 2 || all.every((r) => r === all[0])) return rollouts.map((r) => r.map(() => 0));
  const m = mean(all);
  const std = Math.sqrt(all.reduce((a, r) => a + (r - m) ** 2, 0) / (all.length - 1));
  return rollouts.map((r) => r.map((reward) => (reward - m) / (std + 1e-6)));
}

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}
