/**
 * What every learner loop (token policies in `learner.ts`, MuZero in `muzero/learner.ts`) writes about
 * its run, in one place: metrics.jsonl and the job's metrics in Redis, the per-iteration bookkeeping
 * (status, progress callback, periodic checkpoint and report), the cancel flag, and the portable names of
 * optimizer moments in checkpoints.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { ResolvedConfig } from '../configs/resolve.js';
import type { JobControl } from '../rollout/jobs.js';
import { jobKeys } from '../rollout/protocol.js';
import type { AdamWState } from './optim/adamw.js';
import { writeReport } from './report.js';

/** One metrics record, keyed by global step (= iteration). Namespaces as in docs/metrics.md. */
export type IterationMetrics = { step: number; time: number } & Record<string, number>;

/** The parts of a learner's context the records need. */
export interface RunRecords {
  readonly redis: Redis;
  readonly jobs: JobControl;
  readonly jobId: string;
  readonly runDir: string;
  readonly config: ResolvedConfig;
  readonly onIteration?: (metrics: IterationMetrics) => void;
}

/** Append one record to metrics.jsonl. */
export function appendMetrics(runDir: string, record: Record<string, number>): void {
  appendFileSync(path.join(runDir, 'metrics.jsonl'), `${JSON.stringify(record)}\n`);
}

/** All records of metrics.jsonl (malformed lines are skipped). */
export function readMetricsFile(runDir: string): IterationMetrics[] {
  const file = path.join(runDir, 'metrics.jsonl');
  if (!existsSync(file)) return [];
  const out: IterationMetrics[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as IterationMetrics);
    } catch {
      // A line cut by a crash mid-write: skip it.
    }
  }
  return out;
}

/** On resume, drop metrics of iterations after the checkpoint (they are run again). */
export async function truncateMetrics(ctx: RunRecords, iteration: number): Promise<void> {
  const kept = readMetricsFile(ctx.runDir).filter((m) => m.step <= iteration);
  writeFileSync(path.join(ctx.runDir, 'metrics.jsonl'), kept.map((m) => `${JSON.stringify(m)}\n`).join(''));
  const stored = await ctx.jobs.metrics(ctx.jobId);
  await ctx.jobs.replaceMetrics(
    ctx.jobId,
    stored.filter((r) => Number(r.step) <= iteration),
  );
}

/**
 * Record a finished iteration: metrics.jsonl, Redis, job status, the progress callback; every
 * `train.checkpointEvery` iterations (but not the last, which the loop saves itself) `checkpoint()` and
 * the report.
 */
export async function recordIteration(
  ctx: RunRecords,
  iteration: number,
  metrics: IterationMetrics,
  checkpoint: () => Promise<void>,
): Promise<void> {
  appendMetrics(ctx.runDir, metrics);
  await ctx.jobs.pushMetrics(ctx.jobId, metrics);
  await ctx.jobs.update(ctx.jobId, { iteration, rewardMean: metrics['charts/reward_mean'] });
  ctx.onIteration?.(metrics);
  if (iteration % ctx.config.train.checkpointEvery === 0 && iteration < ctx.config.train.iterations) {
    await checkpoint();
    writeReport(ctx.runDir, readMetricsFile(ctx.runDir), ctx.config);
  }
}

/** Whether the job's cancel flag is set (`horizon cancel`, or a local run whose workers all crashed). */
export async function cancelRequested(ctx: Pick<RunRecords, 'redis' | 'jobs' | 'jobId'>): Promise<boolean> {
  return (await ctx.redis.exists(jobKeys(ctx.jobs.prefix, ctx.jobId).cancel)) === 1;
}

/** A model's trainable variables and their parameter names, in the same order. */
export interface NamedVariables {
  readonly variables: ReadonlyArray<{ readonly name: string }>;
  readonly parameterNames: readonly string[];
}

/**
 * Optimizer moments are keyed `m:` / `v:` + the tfjs variable name, which carries a per-process instance
 * scope (`policy3/model.norm.weight`); checkpoints store them under the parameter names alone.
 */
export function portableOptimizerState(state: AdamWState, model: NamedVariables): AdamWState {
  return renameMoments(state, new Map(model.variables.map((v, i) => [v.name, model.parameterNames[i]])));
}

/** The inverse of `portableOptimizerState` for this process's variables. */
export function localOptimizerState(state: AdamWState, model: NamedVariables): AdamWState {
  return renameMoments(state, new Map(model.parameterNames.map((name, i) => [name, model.variables[i].name])));
}

function renameMoments(state: AdamWState, rename: ReadonlyMap<string, string>): AdamWState {
  const tensors = Object.fromEntries(
    Object.entries(state.tensors).map(([k, v]) => [`${k.slice(0, 1)}:${rename.get(k.slice(2)) ?? k.slice(2)}`, v]),
  );
  return { step: state.step, tensors };
}
