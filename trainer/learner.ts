/**
 * The learner: owns the only trainable copy of the policy and the optimizer, and runs one training job.
 * The outer loop (`runTrainingJob`) reads like LOOP's algorithm box (docs/loop.md); each step is a named
 * stage function below it.
 */
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { TrainingError } from '../core/errors.js';
import { Rng, mixSeed } from '../core/rng.js';
import type { ResolvedConfig } from '../configs/resolve.js';
import { checkEnvInstance, loadEnvDefinition, validateEnvOptions } from '../envs/loader.js';
import type { EnvDefinition, TaskRef } from '../envs/types.js';
import { BYTE_TOKENIZER_VOCAB_SIZE } from '../models/tokenizer.js';
import { resolvePolicyConfig } from '../models/transformer.js';
import { demonstrationRows } from '../rollout/runners.js';
import type { JobControl } from '../rollout/jobs.js';
import { weightsId, type TrajectorySample } from '../rollout/protocol.js';
import type { Trajectory } from '../rollout/trajectory.js';
import { WeightStore } from '../rollout/weight-store.js';
import {
  filterByAdvantage,
  groupAdvantages,
  groupRollouts,
  minibatchDivisor,
  planMinibatches,
  truncatedImportanceWeights,
} from './algorithms/loop.js';
import { aggregationWeights, packRows, rowsOf, unitsOf, type TrainingRow } from './batch.js';
import { listCheckpoints, loadCheckpoint, pruneCheckpoints, saveCheckpoint } from './checkpoint.js';
import { collectGroups, dispatchGroups, type CollectedIteration } from './collect.js';
import { evaluatePolicy } from './evaluate.js';
import { writeReport } from './report.js';
import { createPolicyTrainer, type PolicyTrainer } from './policy-trainer.js';
import { appendMetrics, cancelRequested, readMetricsFile, recordIteration, truncateMetrics, type IterationMetrics } from './records.js';
import { TaskSampler, type TaskSamplerState } from './tasks.js';

/** What the learner needs from its surroundings. */
export interface LearnerContext {
  readonly redis: Redis;
  readonly jobs: JobControl;
  readonly rolloutQueue: Queue;
  readonly jobId: string;
  readonly config: ResolvedConfig;
  /** Run directory: config.json, metrics.jsonl, checkpoints/, report.html. */
  readonly runDir: string;
  /** This run's attempt number (incremented on every start/resume of the job). */
  readonly attempt: number;
  readonly log: (line: string) => void;
  /** Called after every iteration (progress bar). */
  readonly onIteration?: (metrics: IterationMetrics) => void;
  /** Called on the lease heartbeat (every poll), so a long job keeps its lease. */
  readonly heartbeat?: () => Promise<void>;
}

/** One metrics record, keyed by global step (= iteration). Namespaces as in docs/metrics.md. */
export type { IterationMetrics };

/** Mutable training state; everything here is in the checkpoint. */
interface LearnerState {
  /** The policy, its optimizer and (with loop.klCoef > 0) the frozen initial policy, on tfjs or the GPU engine. */
  readonly trainer: PolicyTrainer;
  readonly tasks: TaskSampler;
  readonly rng: Rng;
  readonly env: EnvDefinition;
  iteration: number;
  /** Wall-clock seconds spent in earlier attempts (for ETA and throughput across resumes). */
  elapsedBefore: number;
}

/** Run (or continue) the job until its iterations are done or it is cancelled. */
export async function runTrainingJob(ctx: LearnerContext): Promise<'completed' | 'cancelled'> {
  const { config } = ctx;
  const state = await initialise(ctx);
  // Earlier attempts' weights are never read again (their groups are discarded by attempt).
  const store = new WeightStore(ctx.redis, { prefix: ctx.jobs.prefix });
  for (let a = 1; a < ctx.attempt; a++) await store.prune(weightsId(ctx.jobId, a), Number.POSITIVE_INFINITY);
  await publishWeights(ctx, state);
  const started = Date.now();
  const dispatched = new Map<number, Dispatched>();
  for (let iteration = state.iteration; iteration < config.train.iterations; iteration++) {
    if (await cancelRequested(ctx)) return 'cancelled';
    const tStart = Date.now();
    await dispatchAhead(ctx, state, dispatched, iteration); //                    1. sample T tasks, enqueue their groups
    const collected = await collectIteration(ctx, iteration, dispatched.get(iteration)!); // 2–4. K rollouts each, straggler stop
    dispatched.delete(iteration);
    const tCollected = Date.now();
    const rows = scoreAndFilter(collected, config); //                           5–6. LOO advantages, |A| filter
    const update = await trainOnRows(state, rows, config); //                    7–9. recompute, PPO epochs, clip, abort
    state.iteration = iteration + 1;
    await publishWeights(ctx, state); //                                          10. publish weights
    const metrics = iterationMetrics(iteration, collected, rows, update, {
      collectSec: (tCollected - tStart) / 1000,
      updateSec: (Date.now() - tCollected) / 1000,
      elapsedSec: state.elapsedBefore + (Date.now() - started) / 1000,
    });
    await recordIteration(ctx, state.iteration, metrics, () => saveState(ctx, state, metrics['time/elapsed_s'] - state.elapsedBefore));
    await recordSample(ctx, iteration + 1, collected);
    if (config.train.evalEvery > 0 && state.iteration % config.train.evalEvery === 0) await periodicEval(ctx, state);
  }
  await saveState(ctx, state, (Date.now() - started) / 1000);
  writeReport(ctx.runDir, readMetricsFile(ctx.runDir), config);
  return 'completed';
}

// ─── Setup ──────────────────────────────────────────────────────────────────────────────────────────

async function initialise(ctx: LearnerContext): Promise<LearnerState> {
  const { config } = ctx;
  mkdirSync(path.join(ctx.runDir, 'checkpoints'), { recursive: true });
  writeFileSync(path.join(ctx.runDir, 'config.json'), JSON.stringify(config, null, 2));
  const env = await loadEnvDefinition({ name: config.env.name, module: config.env.module }, config.derived.configDir);
  // Check the plug-in before any work is dispatched: a broken env fails the job here with what is missing.
  const envOptions = validateEnvOptions(env, config.env.options);
  const probe = await env.create(envOptions);
  checkEnvInstance(probe, config.env.module ?? config.env.name ?? env.name);
  await probe.close?.();
  const policyConfig = resolvePolicyConfig({ ...config.model, vocabSize: BYTE_TOKENIZER_VOCAB_SIZE });
  const { trainer } = await createPolicyTrainer(config, policyConfig, ctx.log);
  ctx.log(`backend: ${trainer.description}`);
  ctx.log(`policy: ${trainer.paramCount.toLocaleString('en-US')} parameters (${config.model.nLayers} layers, d=${config.model.dModel})`);
  const poolSize = env.taskCount(config.train.split, envOptions);
  // The newest checkpoint is loaded and verified; a corrupt one is an error naming it and the older ones
  // (nothing is deleted), never a silent restart from scratch.
  const checkpoint = (await listCheckpoints(path.join(ctx.runDir, 'checkpoints'))).at(-1)?.path;
  let state: LearnerState;
  if (checkpoint) {
    const loaded = await loadCheckpoint(checkpoint);
    trainer.setWeights(loaded.model);
    trainer.setOptimizerState(loaded.optimizer);
    const saved = loaded.state as SavedState;
    state = {
      trainer,
      tasks: new TaskSampler(config.train.split, poolSize, config.seed, saved.tasks),
      rng: new Rng(saved.rng),
      env,
      iteration: saved.iteration,
      elapsedBefore: saved.elapsedSec,
    };
    await truncateMetrics(ctx, saved.iteration);
    ctx.log(`resumed from ${checkpoint} at iteration ${saved.iteration}`);
  } else {
    state = {
      trainer,
      tasks: new TaskSampler(config.train.split, poolSize, config.seed),
      rng: new Rng(mixSeed(config.seed, 0x1ea7)),
      env,
      iteration: 0,
      elapsedBefore: 0,
    };
    if (config.train.initFrom !== undefined) await initFromCheckpoint(ctx, state, config.train.initFrom);
    else if (config.sft.steps > 0) await runSftStage(ctx, state);
    await saveState(ctx, state, 0);
  }
  if (config.loop.klCoef > 0) await trainer.freezeReference();
  return state;
}

/**
 * `train.initFrom`: the policy starts from another run's checkpoint (model weights only; the optimizer,
 * task stream and RNG start fresh), e.g. every variant of a comparison from the same SFT checkpoint.
 */
async function initFromCheckpoint(ctx: LearnerContext, state: LearnerState, from: string): Promise<void> {
  // Relative to the config file (a path written in the YAML) or, failing that, to the working directory
  // (a path given with --set on the command line).
  const candidates = [path.resolve(ctx.config.derived.configDir, from), path.resolve(from)];
  const where = candidates.find((c) => existsSync(c)) ?? candidates[0];
  const dir = existsSync(path.join(where, 'manifest.json')) ? where : path.join(where, 'checkpoints');
  const checkpoint = existsSync(path.join(dir, 'manifest.json')) ? dir : (await listCheckpoints(dir)).at(-1)?.path;
  if (checkpoint === undefined)
    throw new TrainingError(
      `train.initFrom: no checkpoint at ${where} (give a checkpoint directory such as runs/<job>/checkpoints/iter-000000, or a run directory)`,
    );
  const loaded = await loadCheckpoint(checkpoint);
  state.trainer.setWeights(loaded.model);
  ctx.log(`initialised from ${checkpoint} (iteration ${loaded.iteration} of that run); SFT skipped`);
}

/** Supervised warm start on the environment's scripted demonstrations (masked NLL on policy tokens). */
async function runSftStage(ctx: LearnerContext, state: LearnerState): Promise<void> {
  const { config } = ctx;
  const { env } = state;
  if (!env.demonstrations)
    throw new TrainingError(`sft.steps = ${config.sft.steps} but environment ${env.name} provides no demonstrations()`);
  const options = validateEnvOptions(env, config.env.options);
  const pool = env.taskCount(config.sft.split, options);
  const sampler = new TaskSampler(config.sft.split, pool, mixSeed(config.seed, 0x5f7));
  const t0 = Date.now();
  for (let step = 0; step < config.sft.steps; step++) {
    // A demonstration gives one row per context the policy would see (several for fresh turns / chunks).
    const rows: TrainingRow[] = sampler.next(config.sft.batchSize).flatMap((task) =>
      demonstrationRows(env.demonstrations!(task, options), config).map((segment) => ({
        rolloutId: `sft/${task.index}`,
        segment,
        advantage: 0,
        policyVersion: 0,
      })),
    );
    const packed = packRows(
      rows,
      rows.map((_, i) => i),
    );
    const loss = await state.trainer.sftStep(packed);
    if (step % 25 === 0 || step === config.sft.steps - 1) {
      ctx.log(`sft step ${step + 1}/${config.sft.steps}: nll ${loss.toFixed(4)} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      await ctx.heartbeat?.();
    }
    appendMetrics(ctx.runDir, { step: -1, time: Date.now(), 'sft/step': step + 1, 'sft/nll': loss });
  }
  state.trainer.endSft();
}

// ─── Steps 2–4: rollouts through the queue ─────────────────────────────────────────────────────────

/** An iteration whose groups are on the queue: its tasks and the policy version they are sampled with. */
interface Dispatched {
  readonly tasks: TaskRef[];
  readonly policyVersion: number;
}

function iterationRequest(ctx: LearnerContext, iteration: number, work: Dispatched) {
  return {
    queue: ctx.rolloutQueue,
    redis: ctx.redis,
    prefix: ctx.jobs.prefix,
    jobId: ctx.jobId,
    attempt: ctx.attempt,
    iteration,
    policyVersion: work.policyVersion,
    tasks: work.tasks,
    config: ctx.config,
    log: ctx.log,
    isCancelled: async () => {
      await ctx.heartbeat?.();
      return cancelRequested(ctx);
    },
  };
}

/**
 * Enqueue the groups of `iteration` and, with `rollout.maxStaleness` = s > 0, of the next s iterations
 * too, sampled with the newest weights: workers run up to s versions ahead of the learner (admission
 * control — nothing is discarded). s = 0 is the synchronous paper setting.
 */
async function dispatchAhead(
  ctx: LearnerContext,
  state: LearnerState,
  dispatched: Map<number, Dispatched>,
  iteration: number,
): Promise<void> {
  const last = Math.min(iteration + ctx.config.rollout.maxStaleness, ctx.config.train.iterations - 1);
  for (let j = iteration; j <= last; j++) {
    if (dispatched.has(j)) continue;
    const work: Dispatched = { tasks: state.tasks.next(ctx.config.rollout.tasksPerIteration), policyVersion: state.iteration };
    await dispatchGroups(iterationRequest(ctx, j, work));
    dispatched.set(j, work);
  }
}

async function collectIteration(ctx: LearnerContext, iteration: number, work: Dispatched): Promise<CollectedIteration> {
  const collected = await collectGroups(iterationRequest(ctx, iteration, work));
  if (collected.groups.length === 0) {
    throw new TrainingError(
      `iteration ${iteration}: every group failed (${collected.failedGroups
        .map((f) => f.reason)
        .slice(0, 3)
        .join('; ')}); see \`horizon logs ${ctx.jobId}\``,
    );
  }
  return collected;
}

// ─── Steps 5–6: advantages and filter ──────────────────────────────────────────────────────────────

interface ScoredRows {
  readonly rows: TrainingRow[];
  readonly trajectories: Trajectory[];
  readonly filtered: number;
}

function scoreAndFilter(collected: CollectedIteration, config: ResolvedConfig): ScoredRows {
  const trajectories = collected.groups.flatMap((g) => g.trajectories);
  if (config.loop.advantageUnit === 'turn') return scoreTurns(trajectories, config);
  const scored = groupRollouts(
    trajectories.map((t) => ({ groupId: t.groupId, reward: t.reward.total, cancelled: false, trajectory: t })),
    { baseline: config.loop.advantage, normalize: config.loop.normalize },
  );
  const kept = filterByAdvantage(scored, config.loop.advantageFilter);
  const rows = rowsOf(
    kept.map((s) => s.rollout.trajectory),
    kept.map((s) => s.advantage),
  );
  return { rows, trajectories, filtered: scored.length - kept.length };
}

/**
 * `loop.advantageUnit: turn` (Mem-α): every turn (segment) is a sample with its own reward from the env's
 * `turnRewards`; the group is all turns of all rollouts of the task, scored together.
 */
function scoreTurns(trajectories: Trajectory[], config: ResolvedConfig): ScoredRows {
  const samples = trajectories.flatMap((t) => {
    const turnRewards = t.reward.turnRewards;
    if (turnRewards === undefined || turnRewards.length !== t.segments.length) {
      throw new TrainingError(
        `loop.advantageUnit is 'turn' but rollout ${t.rolloutId} has ${t.segments.length} turn segments and ${turnRewards === undefined ? 'no' : turnRewards.length} turnRewards; ` +
          `the environment's score() must return one reward per turn (and rollout.context must be 'fresh')`,
      );
    }
    return t.segments.map((segment, s) => ({
      groupId: t.groupId,
      reward: turnRewards[s],
      cancelled: false,
      id: `${t.rolloutId}#${s}`,
      segment,
      t,
    }));
  });
  const scored = groupRollouts(samples, { baseline: config.loop.advantage, normalize: config.loop.normalize });
  const kept = filterByAdvantage(scored, config.loop.advantageFilter);
  const rows: TrainingRow[] = kept.map((k) => ({
    rolloutId: k.rollout.id,
    segment: k.rollout.segment,
    advantage: k.advantage,
    policyVersion: k.rollout.t.policyVersion,
  }));
  return { rows, trajectories, filtered: scored.length - kept.length };
}

// ─── Steps 7–9: the update ─────────────────────────────────────────────────────────────────────────

interface UpdateStats {
  readonly steps: number;
  readonly aborted: boolean;
  readonly means: Record<string, number>;
  readonly logProbMismatch: number;
  readonly trainedTokens: number;
}

async function trainOnRows(state: LearnerState, scored: ScoredRows, config: ResolvedConfig): Promise<UpdateStats> {
  const { rows } = scored;
  const loopCfg = config.loop;
  const empty: UpdateStats = { steps: 0, aborted: false, means: {}, logProbMismatch: 0, trainedTokens: 0 };
  if (rows.length === 0) return empty;
  // 7. Old log-probs recomputed with the current weights (so the first minibatch has ratio ≡ 1).
  const recomputed = await state.trainer.rowLogProbs(rows, config.rollout.temperature);
  const old = loopCfg.recomputeOldLogProbs ? recomputed : rows.map((r) => Float32Array.from(r.segment.logProbs));
  const reference = loopCfg.klCoef > 0 ? await state.trainer.rowLogProbs(rows, config.rollout.temperature, 'reference') : undefined;
  let mismatch = 0;
  let outputTokens = 0;
  rows.forEach((r, i) => {
    r.segment.isOutput.forEach((m, t) => {
      if (m) {
        mismatch += Math.abs(recomputed[i][t] - r.segment.logProbs[t]);
        outputTokens += 1;
      }
    });
  });
  // 8. N_epoch epochs of shuffled minibatches of M rollouts (a rollout's rows — Delethink chunks — stay
  // together), aggregated per `loop.aggregation` (LOOP: fixed divisor M).
  const units = unitsOf(rows);
  const plan = planMinibatches(units.length, loopCfg.minibatchSize, loopCfg.epochs, state.rng, loopCfg.fullBatch).map((epoch) =>
    epoch.map((minibatch) => minibatch.flatMap((u) => units[u])),
  );
  const divisor = minibatchDivisor(loopCfg.minibatchSize, units.length, loopCfg.fullBatch);
  const sums: Record<string, number> = {};
  let steps = 0;
  let aborted = false;
  state.trainer.startUpdates();
  let inFlight: ReturnType<PolicyTrainer['trainMinibatch']> | undefined;
  /** Account for one finished minibatch; true when it aborted (step 9 of docs/loop.md: the iteration's updates stop). */
  const record = (step: Awaited<ReturnType<PolicyTrainer['trainMinibatch']>>): boolean => {
    // 9. Abort the rest of the iteration on NaN loss or a sequence-level KL above the limit (checked
    // before the update is applied; on the engine, on the GPU inside the same submit).
    if (step.aborted) {
      aborted = true;
      return true;
    }
    const values: Record<string, number> = { ...step.stats, grad_norm: step.gradNorm };
    // The GPU engine's f16 paths skip a step whose gradients overflowed (and halve the loss scale).
    if (!step.applied) values.overflow_skipped = 1;
    for (const [k, v] of Object.entries(values)) sums[k] = (sums[k] ?? 0) + v;
    steps += 1;
    return false;
  };
  outer: for (const epoch of plan) {
    for (const minibatch of epoch) {
      const packed = packRows(rows, minibatch);
      const seqLen = packed.batch.seqLen;
      const gather = (per: Float32Array[]) => {
        const out = new Float32Array(minibatch.length * seqLen);
        minibatch.forEach((r, b) => out.set(per[r].subarray(0, Math.min(per[r].length, seqLen)), b * seqLen));
        return out;
      };
      // Off-policy correction where some row was sampled by an older version than the update starts from
      // (or on every token with `importanceSampling: always`, Delethink's truncated IS).
      const stale = loopCfg.importanceSampling === 'always' || minibatch.some((r) => rows[r].policyVersion < state.iteration);
      const importanceWeights = stale
        ? truncatedImportanceWeights(gather(old), packed.samplerLogProbs, packed.mask, config.rollout.importanceWeightCap)
        : undefined;
      const objective = {
        packed,
        temperature: config.rollout.temperature,
        loss: {
          oldLogProbs: gather(old),
          mask: packed.mask,
          turnIds: packed.turnIds,
          advantages: packed.advantages,
          divisor,
          rowWeights: aggregationWeights(rows, minibatch, loopCfg.aggregation),
          dualClip: loopCfg.dualClip,
          clipLow: config.derived.clipLow,
          clipHigh: config.derived.clipHigh,
          ratio: loopCfg.ratio,
          refLogProbs: reference ? gather(reference) : undefined,
          klCoef: loopCfg.klCoef,
          importanceWeights,
        },
      };
      // With a trainer that can (the engine), this minibatch is submitted before the previous one's statistics
      // are read: the GPU never idles on the read-back. The abort is decided on the device and stays set,
      // so a minibatch issued after an aborting one changes nothing either — the same updates as in order.
      const next = state.trainer.trainMinibatch(objective, loopCfg.maxKl);
      if (state.trainer.pipelined) {
        const previous = inFlight;
        inFlight = next;
        if (previous) {
          let stop: boolean;
          try {
            stop = record(await previous);
          } catch (err) {
            next.catch(() => undefined); // the error that matters is the earlier one
            throw err;
          }
          if (stop) {
            await next.catch(() => undefined); // gated on the device by the sticky abort: changes nothing
            inFlight = undefined;
            break outer;
          }
        }
      } else if (record(await next)) break outer;
    }
  }
  if (inFlight) record(await inFlight);
  const means = Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / Math.max(steps, 1)]));
  return { steps, aborted, means, logProbMismatch: outputTokens ? mismatch / outputTokens : 0, trainedTokens: outputTokens };
}

// ─── Step 10 and bookkeeping ───────────────────────────────────────────────────────────────────────

async function publishWeights(ctx: LearnerContext, state: LearnerState): Promise<void> {
  const store = new WeightStore(ctx.redis, { prefix: ctx.jobs.prefix });
  const id = weightsId(ctx.jobId, ctx.attempt);
  await store.put(id, state.iteration, await state.trainer.toSafetensors());
  // Workers only ever need the newest version (plus staleness slack); drop older blobs.
  await store.prune(id, Math.max(0, state.iteration - 1 - ctx.config.rollout.maxStaleness));
  await ctx.jobs.update(ctx.jobId, { policyVersion: state.iteration });
}

function iterationMetrics(
  iteration: number,
  collected: CollectedIteration,
  scored: ScoredRows,
  update: UpdateStats,
  timing: { collectSec: number; updateSec: number; elapsedSec: number },
): IterationMetrics {
  const t = scored.trajectories;
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  const metrics: IterationMetrics = {
    step: iteration + 1,
    time: Date.now(),
    'charts/reward_mean': mean(t.map((x) => x.reward.total)),
    'charts/success_rate': mean(t.map((x) => (x.reward.total >= 1 ? 1 : 0))),
    'charts/episode_turns': mean(t.map((x) => x.turns)),
    'charts/episode_tokens': mean(t.map((x) => x.segments.reduce((a, s) => a + s.tokens.length, 0))),
    'losses/steps': update.steps,
    'losses/aborted': update.aborted ? 1 : 0,
    'losses/logprob_mismatch': update.logProbMismatch,
    'rollout/episodes': t.length,
    'rollout/episodes_per_s': t.length / Math.max(timing.collectSec, 1e-9),
    'rollout/tokens_per_s': collected.generatedTokens / Math.max(timing.collectSec, 1e-9),
    'rollout/failed_groups': collected.failedGroups.length,
    'rollout/cancelled': collected.groups.reduce((a, g) => a + g.cancelled.length, 0),
    'rollout/filtered': scored.filtered,
    'rollout/retries': t.reduce((a, x) => a + x.retries, 0),
    'rollout/duplicates': collected.duplicateRollouts,
    'rollout/staleness': mean(t.map((x) => iteration - x.policyVersion)),
    'time/collect_s': timing.collectSec,
    'time/update_s': timing.updateSec,
    'time/elapsed_s': timing.elapsedSec,
    'time/trained_tokens': update.trainedTokens,
    // Leak watch: both stay flat over a long run (bench/memory.ts reads them).
    'memory/tensors': tf.memory().numTensors,
    'memory/rss_mb': process.memoryUsage().rss / 2 ** 20,
  };
  for (const [k, v] of Object.entries(update.means)) metrics[`losses/${k}`] = v;
  const parts = new Map<string, number[]>();
  for (const x of t) for (const [k, v] of Object.entries(x.reward.parts)) parts.set(k, [...(parts.get(k) ?? []), v]);
  for (const [k, v] of parts) metrics[`rewards/${k}`] = mean(v);
  return metrics;
}

/**
 * Record the first `train.sampleGroups` groups of the iteration whole (every rollout with its advantage,
 * trained or filtered) for the trajectory viewer. Bounded: a few groups per iteration, newest 500 kept.
 */
async function recordSample(ctx: LearnerContext, step: number, collected: CollectedIteration): Promise<void> {
  const count = ctx.config.train.sampleGroups;
  if (count === 0) return;
  const { loop } = ctx.config;
  const groups = collected.groups.slice(0, count).map((g) => {
    const advantages = groupAdvantages(
      g.trajectories.map((t) => t.reward.total),
      { baseline: loop.advantage, normalize: loop.normalize },
    );
    return {
      groupIndex: g.groupIndex,
      task: g.task,
      rollouts: g.trajectories.map((trajectory, k) => ({
        trajectory,
        advantage: advantages[k],
        trained: Math.abs(advantages[k]) >= loop.advantageFilter,
      })),
    };
  });
  await ctx.jobs.pushSample(ctx.jobId, { step, groups: groups as TrajectorySample['groups'] });
}

/**
 * `train.evalEvery`: evaluate the current policy on the first `train.evalTasks` tasks of the `eval` split
 * (or `test` when the env has no `eval` split), one sampled episode each; recorded as `eval/*` metrics.
 */
async function periodicEval(ctx: LearnerContext, state: LearnerState): Promise<void> {
  const { config } = ctx;
  const options = validateEnvOptions(state.env, config.env.options);
  const split = state.env.taskCount('eval', options) > 0 ? 'eval' : 'test';
  const result = await evaluatePolicy(await state.trainer.evaluationPolicy(), config, {
    split,
    tasks: config.train.evalTasks,
    baselines: false,
  });
  const record: IterationMetrics = {
    step: state.iteration,
    time: Date.now(),
    'eval/reward_mean': result.policy.rewardMean,
    'eval/success_rate': result.policy.successRate,
    'eval/wall_s': result.wallSec,
  };
  for (const [k, v] of Object.entries(result.policy.summary)) record[`eval/${k}`] = v;
  appendMetrics(ctx.runDir, record);
  await ctx.jobs.pushMetrics(ctx.jobId, record);
  ctx.log(
    `eval at iteration ${state.iteration} (${split}, ${result.tasks} tasks): reward ${result.policy.rewardMean.toFixed(3)}, success ${(100 * result.policy.successRate).toFixed(1)}%`,
  );
}

/** What state.json of a checkpoint holds besides the weights and optimizer. */
interface SavedState {
  readonly iteration: number;
  readonly tasks: TaskSamplerState;
  readonly rng: number[];
  readonly elapsedSec: number;
  readonly jobId: string;
}

async function saveState(ctx: LearnerContext, state: LearnerState, elapsedThisRunSec: number): Promise<void> {
  const dir = path.join(ctx.runDir, 'checkpoints');
  const saved: SavedState = {
    iteration: state.iteration,
    tasks: state.tasks.state(),
    rng: state.rng.state(),
    elapsedSec: state.elapsedBefore + elapsedThisRunSec,
    jobId: ctx.jobId,
  };
  const where = await saveCheckpoint(dir, state.iteration, {
    model: await state.trainer.getWeights(),
    optimizer: await state.trainer.getOptimizerState(),
    state: saved,
  });
  await pruneCheckpoints(dir, ctx.config.train.keepCheckpoints, { alwaysKeep: [0] });
  ctx.log(`checkpoint: ${where}`);
}
