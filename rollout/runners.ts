/**
 * The context policy of a run (config `rollout.context`) decides how a group's episodes are generated and
 * how scripted demonstrations become training rows. One place maps the config to the runner, so the
 * worker, the learner's SFT stage, evaluation and benchmarks cannot disagree.
 *
 *   multi-turn  whole episode in one context (LOOP)                        → `runGroup`
 *   fresh       each turn sees only the latest observation (Mem-α)         → `runGroup` with fresh turns
 *   delethink   chunked Markovian thinking (docs/delethink.md)            → `runDelethinkGroup`
 *   longcot     one chunk of the whole thinking budget (the baseline)      → `runDelethinkGroup`, I = 1
 */
import type { GenerationPolicy } from '../models/sampler.js';
import type { ResolvedConfig } from '../configs/resolve.js';
import type { Demonstration } from '../envs/types.js';
import { demonstrationTraceSegments, longCotTracing, runDelethinkGroup, thinkingBudget, type DelethinkTracing } from './delethink.js';
import { demonstrationSegments, episodeLimits, runGroup, type GroupOutcome, type GroupSpec } from './episode.js';
import type { Segment } from './trajectory.js';

/** The tracing parameters of a `delethink` / `longcot` run, optionally with another chunk cap (test-time scaling). */
export function tracingOf(config: ResolvedConfig, maxChunks?: number): DelethinkTracing {
  const d = config.delethink;
  const tracing: DelethinkTracing = {
    chunkTokens: d.chunkTokens,
    carryoverTokens: d.carryoverTokens,
    headTokens: d.headTokens,
    maxChunks: maxChunks ?? d.maxChunks,
    carry: d.carry,
  };
  // LongCoT: one chunk holding the thinking budget the delethink section defines (or the budget of
  // `maxChunks` chunks when evaluating beyond the training budget), so both compare at equal budgets.
  return config.rollout.context === 'longcot' ? longCotTracing(thinkingBudget(tracing)) : tracing;
}

/** Run one group's episodes with the run's context policy. `maxChunks` overrides I, `tracing` the whole tracing (evaluation only). */
export function runEpisodes<Options>(
  policy: GenerationPolicy,
  spec: Omit<GroupSpec<Options>, 'limits'>,
  config: ResolvedConfig,
  opts: { maxChunks?: number; tracing?: DelethinkTracing } = {},
): Promise<GroupOutcome> {
  const limits = episodeLimits(config);
  const context = config.rollout.context;
  if (context === 'delethink' || context === 'longcot')
    return runDelethinkGroup(policy, { ...spec, limits }, opts.tracing ?? tracingOf(config, opts.maxChunks));
  return runGroup(policy, { ...spec, limits });
}

/**
 * Training segments of one scripted demonstration under the run's context policy: the multi-turn
 * transcript, one segment per fresh turn, or the solver's trace (with BOS and end-of-turn, as a live trace
 * has them) chunked exactly as the tracer would.
 */
export function demonstrationRows(demo: Demonstration, config: ResolvedConfig): Segment[] {
  const context = config.rollout.context;
  if (context !== 'delethink' && context !== 'longcot') return demonstrationSegments(demo, episodeLimits(config));
  return demonstrationTraceSegments(demo, tracingOf(config), { trainOnEndOfTurn: config.rollout.trainOnEndOfTurn });
}
