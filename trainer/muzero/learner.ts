/**
 * The MuZero learner (algorithm `muzero`; docs/mallocmuzero.md, "Training": "Self-play runs on rollout workers from
 * the queue with the policy version they were given; the learner trains continuously and publishes
 * weights"). It owns the networks, the optimizer and the replay buffer; rollout workers play self-play
 * jobs. One iteration:
 *
 *   1. keep `selfPlay.jobsInFlight` self-play jobs queued or running, each with the newest weights;
 *   2. add every game finished since the last look to the replay (rebuilt by replaying its actions) —
 *      waiting only while the replay holds fewer than `learner.minReplayPositions` positions;
 *   3. `learner.updatesPerIteration` updates on prioritised K-step unroll samples;
 *   4. reanalyse `reanalyse.episodesPerIteration` stored games with the newest networks;
 *   5. publish the weights as version iteration + 1 through the weight store.
 *
 * Checkpoints hold the networks, the optimizer, the RNG and program-stream positions and counters; the
 * replay buffer is not saved: a resumed run refills it from fresh self-play (step 2 waits until it holds
 * `minReplayPositions` again).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { TrainingError } from '../../core/errors.js';
import { Rng, mixSeed } from '../../core/rng.js';
import type { ResolvedConfig } from '../../configs/resolve.js';
import { resolveGameOptions, type MallocGameOptions } from '../../envs/malloc/game.js';
import type { CompiledProgram } from '../../envs/malloc/types.js';
import { selectBackend } from '../../models/backend.js';
import type { MuZeroNetworks } from '../../models/muzero/networks.js';
import { weightsId } from '../../rollout/protocol.js';
import type { SelfPlayProgram } from '../../rollout/selfplay.js';
import { WeightStore } from '../../rollout/weight-store.js';
import { listCheckpoints, loadCheckpoint, pruneCheckpoints, saveCheckpoint } from '../checkpoint.js';
import type { LearnerContext } from '../learner.js';
import {
  appendMetrics,
  cancelRequested,
  localOptimizerState,
  portableOptimizerState,
  readMetricsFile,
  recordIteration,
  truncateMetrics,
  type IterationMetrics,
} from '../records.js';
import type { AdamW } from '../optim/adamw.js';
import { writeReport } from '../report.js';
import { TaskSampler, type TaskSamplerState } from '../tasks.js';
import { SelfPlayCollector, type ArrivedSelfPlay } from './collect.js';
import { episodeToReplayInput } from './episodes.js';
import { createRunNetworks, evalSearchConfig, evaluateMuZero } from './evaluate.js';
import { loadEvalPrograms, loadTrainingPrograms, type TrainingProgram } from './programs.js';
import { reanalyse } from './reanalyse.js';
import { PrioritizedReplay } from './replay.js';
import { createMuZeroOptimizer, muzeroTrainStep } from './train.js';

// ─── Pure bookkeeping ───────────────────────────────────────────────────────────────────────────────

/** What the charts report about one self-play game. */
export interface GameOutcome {
  /** Σ rewards: share of the all-slow time saved, in [0, 1). */
  readonly return: number;
  /** T_base / T_agent − 1 against the XLA-like baseline on the same program. */
  readonly speedup: number;
  /** 1 when T_agent ≤ T_base (up to rounding), else 0. */
  readonly success: number;
  /** Moves (= buffers of the program). */
  readonly length: number;
}

/** The outcome of a game of `finalTime` on a program whose baseline mapping runs in `baselineTime`. */
export function gameOutcome(
  episode: { readonly return: number; readonly finalTime: number; readonly actions: readonly number[] },
  baselineTime: number,
): GameOutcome {
  return {
    return: episode.return,
    speedup: baselineTime / episode.finalTime - 1,
    // Equal times up to rounding count as "as good" (as in envs/malloc/evaluate.ts).
    success: episode.finalTime <= baselineTime * (1 + 1e-12) ? 1 : 0,
    length: episode.actions.length,
  };
}

/**
 * The newest `capacity` game outcomes. `charts/*` are means over this window, so every iteration has a
 * value even when no game finished during it (the learner does not wait for self-play).
 */
export class RecentGames {
  private readonly games: GameOutcome[] = [];

  constructor(readonly capacity: number) {
    if (!(Number.isInteger(capacity) && capacity >= 1))
      throw new RangeError(`RecentGames capacity must be an integer ≥ 1, got ${capacity}`);
  }

  get size(): number {
    return this.games.length;
  }

  push(outcome: GameOutcome): void {
    this.games.push(outcome);
    if (this.games.length > this.capacity) this.games.splice(0, this.games.length - this.capacity);
  }

  /** Mean of one field over the window (NaN when empty). */
  mean(field: keyof GameOutcome): number {
    if (this.games.length === 0) return Number.NaN;
    return this.games.reduce((a, g) => a + g[field], 0) / this.games.length;
  }
}

/**
 * Staleness of self-play data: learner version at ingestion − the version that played each game
 * (`selfplay/staleness`: mean, `selfplay/staleness_max`). Undefined for no games.
 */
export function stalenessStats(learnerVersion: number, policyVersions: readonly number[]): { mean: number; max: number } | undefined {
  if (policyVersions.length === 0) return undefined;
  const lags = policyVersions.map((v) => learnerVersion - v);
  return { mean: lags.reduce((a, b) => a + b, 0) / lags.length, max: Math.max(...lags) };
}

/** Reanalyse order: the `n` stored games refreshed least often, oldest first among equals. */
export function pickForReanalyse(episodes: ReadonlyArray<{ readonly id: number; readonly reanalysed: number }>, n: number): number[] {
  return [...episodes]
    .sort((a, b) => a.reanalysed - b.reanalysed || a.id - b.id)
    .slice(0, n)
    .map((e) => e.id);
}

// ─── State ──────────────────────────────────────────────────────────────────────────────────────────

/** Counters kept across resumes (in the checkpoint). */
interface Counters {
  updates: number;
  episodes: number;
  positions: number;
  /** Positions drawn by updates (batch size × updates). */
  sampledPositions: number;
  reanalysedPositions: number;
}

/** Training state; everything but the replay, the recent-games window and the attempt's counters is in the checkpoint. */
interface MuZeroLearnerState {
  readonly networks: MuZeroNetworks;
  readonly optimizer: AdamW;
  readonly replay: PrioritizedReplay;
  readonly game: MallocGameOptions;
  readonly programs: readonly TrainingProgram[];
  readonly programById: ReadonlyMap<string, TrainingProgram>;
  readonly compiledById: ReadonlyMap<string, CompiledProgram>;
  /** Which programs the next self-play jobs play (every program once per epoch, reshuffled). */
  readonly sampler: TaskSampler;
  readonly rng: Rng;
  readonly recent: RecentGames;
  readonly counters: Counters;
  /** Evaluation programs, loaded once when `train.evalEvery` > 0. */
  readonly evalPrograms?: readonly SelfPlayProgram[];
  /** Failed self-play jobs since the last one that finished; the run fails when all jobs in flight fail in a row. */
  consecutiveFailures: number;
  /** This attempt: when self-play started and the games it brought (for `rollout/episodes_per_s`). */
  readonly attemptStarted: number;
  attemptEpisodes: number;
  iteration: number;
  elapsedBefore: number;
}

/** What state.json of a MuZero checkpoint holds besides the weights and optimizer. */
interface SavedMuZeroState {
  readonly iteration: number;
  readonly programs: TaskSamplerState;
  readonly rng: number[];
  readonly elapsedSec: number;
  readonly jobId: string;
  readonly counters: Counters;
}

// ─── The loop ───────────────────────────────────────────────────────────────────────────────────────

/** Run (or continue) a muzero job until its iterations are done or it is cancelled. */
export async function runMuZeroTrainingJob(ctx: LearnerContext): Promise<'completed' | 'cancelled'> {
  const { config } = ctx;
  const state = await initialise(ctx);
  const selfPlay = new SelfPlayCollector({
    queue: ctx.rolloutQueue,
    redis: ctx.redis,
    prefix: ctx.jobs.prefix,
    jobId: ctx.jobId,
    attempt: ctx.attempt,
    config,
    log: ctx.log,
  });
  try {
    await publishWeights(ctx, state, selfPlay);
    const started = Date.now();
    for (let iteration = state.iteration; iteration < config.train.iterations; iteration++) {
      if (await cancelRequested(ctx)) return 'cancelled';
      const t0 = Date.now();
      const ingested = await ingestSelfPlay(ctx, state, selfPlay); //     1–2. jobs in flight; finished games → replay
      if (ingested === 'cancelled') return 'cancelled';
      const t1 = Date.now();
      const update = await trainOnReplay(state, config); //                3. prioritised unroll updates
      const t2 = Date.now();
      const reanalysed = await reanalyseStored(state, config); //           4. refresh stored targets
      const t3 = Date.now();
      state.iteration = iteration + 1;
      await publishWeights(ctx, state, selfPlay); //                         5. publish version iteration + 1
      const metrics = iterationMetrics(state, selfPlay, ingested, update, reanalysed, {
        ingestSec: (t1 - t0) / 1000,
        updateSec: (t2 - t1) / 1000,
        reanalyseSec: (t3 - t2) / 1000,
        iterationSec: (Date.now() - t0) / 1000,
        elapsedSec: state.elapsedBefore + (Date.now() - started) / 1000,
      });
      await recordIteration(ctx, state.iteration, metrics, () => saveState(ctx, state, metrics['time/elapsed_s'] - state.elapsedBefore));
      if (config.train.evalEvery > 0 && state.iteration % config.train.evalEvery === 0) await periodicEval(ctx, state);
    }
    await saveState(ctx, state, (Date.now() - started) / 1000);
    writeReport(ctx.runDir, readMetricsFile(ctx.runDir), config);
    return 'completed';
  } finally {
    await selfPlay.close();
    state.optimizer.dispose();
    state.networks.dispose();
  }
}

// ─── Setup ──────────────────────────────────────────────────────────────────────────────────────────

async function initialise(ctx: LearnerContext): Promise<MuZeroLearnerState> {
  const { config } = ctx;
  const m = config.muzero;
  const backend = await selectBackend(config.backend);
  ctx.log(`backend: ${backend.name} (${backend.reason})`);
  mkdirSync(path.join(ctx.runDir, 'checkpoints'), { recursive: true });
  writeFileSync(path.join(ctx.runDir, 'config.json'), JSON.stringify(config, null, 2));
  const game = resolveGameOptions(m.game);
  const programs = loadTrainingPrograms(config);
  const buffers = programs.map((p) => p.program.bufferCount);
  ctx.log(`training programs: ${programs.length} (${Math.min(...buffers)}–${Math.max(...buffers)} buffers)`);
  const networks = createRunNetworks(config);
  ctx.log(
    `networks: ${networks.paramCount.toLocaleString('en-US')} parameters (observation ${networks.config.observationSize}, ${networks.numActions} actions)`,
  );
  const optimizer = createMuZeroOptimizer(networks, m.train);
  const replay = new PrioritizedReplay(networks.config.observationSize, networks.numActions, m.replay);
  const evalPrograms =
    config.train.evalEvery > 0
      ? loadEvalPrograms({
          heldout: m.eval.heldout,
          files: m.eval.files,
          baseDir: config.derived.configDir,
          csvCapacityFraction: m.programs.csvCapacityFraction,
          maxPrograms: m.eval.maxPrograms,
        })
      : undefined;
  const base = {
    networks,
    optimizer,
    replay,
    game,
    programs,
    programById: new Map(programs.map((p) => [p.ref.id, p])),
    compiledById: new Map(programs.map((p) => [p.ref.id, p.program])),
    recent: new RecentGames(m.selfPlay.gamesPerJob * m.selfPlay.jobsInFlight),
    evalPrograms,
    consecutiveFailures: 0,
    attemptStarted: Date.now(),
    attemptEpisodes: 0,
  };
  // The newest checkpoint is loaded and verified; a corrupt one is an error naming it (never a silent restart).
  const checkpoint = (await listCheckpoints(path.join(ctx.runDir, 'checkpoints'))).at(-1)?.path;
  let state: MuZeroLearnerState;
  if (checkpoint) {
    const loaded = await loadCheckpoint(checkpoint);
    networks.setWeights(loaded.model);
    optimizer.setState(localOptimizerState(loaded.optimizer, networks));
    const saved = loaded.state as SavedMuZeroState;
    state = {
      ...base,
      sampler: new TaskSampler('train', programs.length, mixSeed(config.seed, 0x9a0e), saved.programs),
      rng: new Rng(saved.rng),
      counters: { ...saved.counters },
      iteration: saved.iteration,
      elapsedBefore: saved.elapsedSec,
    };
    await truncateMetrics(ctx, saved.iteration);
    ctx.log(`resumed from ${checkpoint} at iteration ${saved.iteration}; the replay buffer starts empty and refills from self-play`);
  } else {
    state = {
      ...base,
      sampler: new TaskSampler('train', programs.length, mixSeed(config.seed, 0x9a0e)),
      rng: new Rng(mixSeed(config.seed, 0x3e20)),
      counters: { updates: 0, episodes: 0, positions: 0, sampledPositions: 0, reanalysedPositions: 0 },
      iteration: 0,
      elapsedBefore: 0,
    };
    if (config.train.initFrom !== undefined) await initFromCheckpoint(ctx, state, config.train.initFrom);
    await saveState(ctx, state, 0);
  }
  // Weights are published per attempt (rollout/protocol.ts, weightsId); earlier attempts' are never read again.
  const store = new WeightStore(ctx.redis, { prefix: ctx.jobs.prefix });
  for (let a = 1; a < ctx.attempt; a++) await store.prune(weightsId(ctx.jobId, a), Number.POSITIVE_INFINITY);
  return state;
}

/** `train.initFrom`: start from another muzero run's networks (weights only; optimizer and streams start fresh). */
async function initFromCheckpoint(ctx: LearnerContext, state: MuZeroLearnerState, from: string): Promise<void> {
  const where = path.resolve(ctx.config.derived.configDir, from);
  const dir = existsSync(path.join(where, 'manifest.json')) ? where : path.join(where, 'checkpoints');
  const checkpoint = existsSync(path.join(dir, 'manifest.json')) ? dir : (await listCheckpoints(dir)).at(-1)?.path;
  if (checkpoint === undefined)
    throw new TrainingError(
      `train.initFrom: no checkpoint at ${where} (give a checkpoint directory such as runs/<job>/checkpoints/iter-000000, or a run directory)`,
    );
  const loaded = await loadCheckpoint(checkpoint);
  state.networks.setWeights(loaded.model);
  ctx.log(`initialised from ${checkpoint} (iteration ${loaded.iteration} of that run)`);
}

// ─── Steps 1–2: self-play through the queue ────────────────────────────────────────────────────────

interface IngestStats {
  readonly jobs: number;
  readonly episodes: number;
  readonly positions: number;
  readonly failedJobs: number;
  readonly duplicates: number;
  readonly staleness?: { mean: number; max: number };
  /** Seconds spent blocked on self-play (only while the replay is below `minReplayPositions`). */
  readonly waitSec: number;
}

/**
 * Keep the jobs in flight topped up with the newest version and ingest every finished job; block only
 * while the replay is below `learner.minReplayPositions`. Returns 'cancelled' when a cancel arrives
 * while waiting.
 */
async function ingestSelfPlay(
  ctx: LearnerContext,
  state: MuZeroLearnerState,
  selfPlay: SelfPlayCollector,
): Promise<IngestStats | 'cancelled'> {
  const { selfPlay: options, learner } = ctx.config.muzero;
  const pick = (n: number) => state.sampler.next(n).map((task) => state.programs[task.index].ref);
  const versions: number[] = [];
  let jobs = 0;
  let positions = 0;
  let failedJobs = 0;
  let duplicates = 0;
  let waitSec = 0;
  for (;;) {
    await selfPlay.topUp(state.iteration, pick);
    const waiting = state.replay.size < learner.minReplayPositions;
    const t = Date.now();
    const polled = await selfPlay.poll(waiting ? 250 : 0);
    if (waiting) waitSec += (Date.now() - t) / 1000;
    for (const job of polled.arrived) {
      positions += addToReplay(state, job);
      versions.push(...job.episodes.map((e) => e.policyVersion));
      jobs += 1;
    }
    failedJobs += polled.failed.length;
    duplicates += polled.duplicates;
    state.consecutiveFailures = polled.arrived.length > 0 ? polled.failed.length : state.consecutiveFailures + polled.failed.length;
    if (state.consecutiveFailures >= options.jobsInFlight) {
      throw new TrainingError(
        `${state.consecutiveFailures} self-play jobs in a row failed (${polled.failed
          .map((f) => f.reason)
          .slice(0, 3)
          .join('; ')}); see the worker logs and \`horizon logs ${ctx.jobId}\``,
      );
    }
    if (state.replay.size >= learner.minReplayPositions) break;
    await ctx.heartbeat?.();
    if (await cancelRequested(ctx)) return 'cancelled';
  }
  return {
    jobs,
    episodes: versions.length,
    positions,
    failedJobs,
    duplicates,
    staleness: stalenessStats(state.iteration, versions),
    waitSec,
  };
}

/** Rebuild a finished job's games (replaying their actions) into the replay; returns the positions added. */
function addToReplay(state: MuZeroLearnerState, job: ArrivedSelfPlay): number {
  let positions = 0;
  for (const episode of job.episodes) {
    const program = state.programById.get(episode.programId);
    if (program === undefined)
      throw new TrainingError(
        `self-play job ${job.jobIndex} (worker ${job.workerId}) played "${episode.programId}", which is not a training program of this run`,
      );
    state.replay.add(episodeToReplayInput(episode, program.program, state.game));
    state.recent.push(gameOutcome(episode, program.baselineTime));
    positions += episode.actions.length;
  }
  state.counters.episodes += job.episodes.length;
  state.counters.positions += positions;
  state.attemptEpisodes += job.episodes.length;
  return positions;
}

// ─── Steps 3–4: updates and reanalyse ──────────────────────────────────────────────────────────────

interface UpdateStats {
  readonly steps: number;
  /** Means over the iteration's updates: loss, policy_loss, value_loss, reward_loss, l2_loss, grad_norm. */
  readonly means: Record<string, number>;
}

async function trainOnReplay(state: MuZeroLearnerState, config: ResolvedConfig): Promise<UpdateStats> {
  const { train, learner } = config.muzero;
  const sums: Record<string, number> = { loss: 0, policy_loss: 0, value_loss: 0, reward_loss: 0, l2_loss: 0, grad_norm: 0 };
  for (let u = 0; u < learner.updatesPerIteration; u++) {
    const batch = state.replay.sample(train.batchSize, state.rng);
    const stats = await muzeroTrainStep(state.networks, state.optimizer, batch, train);
    state.replay.updatePriorities(batch.slots, stats.priorities);
    sums.loss += stats.loss;
    sums.policy_loss += stats.policyLoss;
    sums.value_loss += stats.valueLoss;
    sums.reward_loss += stats.rewardLoss;
    sums.l2_loss += stats.l2Loss;
    sums.grad_norm += stats.gradNorm;
    state.counters.updates += 1;
    state.counters.sampledPositions += train.batchSize;
  }
  const steps = learner.updatesPerIteration;
  return { steps, means: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / steps])) };
}

/** Reanalyse (MuZero Reanalyse): re-search the least-refreshed stored games; returns the positions refreshed. */
async function reanalyseStored(state: MuZeroLearnerState, config: ResolvedConfig): Promise<number> {
  const n = config.muzero.reanalyse.episodesPerIteration;
  if (n === 0) return 0;
  const stored = state.replay.episodeIds().map((id) => ({ id, reanalysed: state.replay.episode(id)?.reanalysed ?? 0 }));
  const refreshed = await reanalyse(state.networks, state.replay, pickForReanalyse(stored, n), config.muzero.search, state.rng, {
    simulator: { programs: state.compiledById, gameOptions: state.game },
  });
  state.counters.reanalysedPositions += refreshed;
  return refreshed;
}

// ─── Step 5 and bookkeeping ────────────────────────────────────────────────────────────────────────

/**
 * Publish the networks as version `state.iteration` of this attempt's weights; keep every version a job in
 * flight may still fetch.
 */
async function publishWeights(ctx: LearnerContext, state: MuZeroLearnerState, selfPlay: SelfPlayCollector): Promise<void> {
  const store = new WeightStore(ctx.redis, { prefix: ctx.jobs.prefix });
  const id = weightsId(ctx.jobId, ctx.attempt);
  await store.put(id, state.iteration, await state.networks.toSafetensorsAsync());
  await store.prune(id, Math.min(state.iteration, selfPlay.oldestVersionInFlight() ?? state.iteration));
  await ctx.jobs.update(ctx.jobId, { policyVersion: state.iteration });
}

function iterationMetrics(
  state: MuZeroLearnerState,
  selfPlay: SelfPlayCollector,
  ingested: IngestStats,
  update: UpdateStats,
  reanalysed: number,
  timing: { ingestSec: number; updateSec: number; reanalyseSec: number; iterationSec: number; elapsedSec: number },
): IterationMetrics {
  const { recent, counters, replay } = state;
  const metrics: IterationMetrics = {
    step: state.iteration,
    time: Date.now(),
    'charts/reward_mean': recent.mean('return'),
    'charts/success_rate': recent.mean('success'),
    'charts/speedup_mean': recent.mean('speedup'),
    'charts/episode_length': recent.mean('length'),
    'losses/steps': update.steps,
    'rollout/episodes': ingested.episodes,
    'rollout/jobs': ingested.jobs,
    'rollout/episodes_per_s': state.attemptEpisodes / Math.max((Date.now() - state.attemptStarted) / 1000, 1e-9),
    'rollout/failed_jobs': ingested.failedJobs,
    'rollout/duplicates': ingested.duplicates,
    'rollout/jobs_in_flight': selfPlay.inFlightCount,
    'replay/positions': replay.size,
    'replay/episodes': replay.episodeCount,
    'replay/samples_per_position': counters.sampledPositions / Math.max(counters.positions, 1),
    'replay/reanalysed_positions': reanalysed,
    'time/wait_s': ingested.waitSec,
    'time/ingest_s': timing.ingestSec,
    'time/update_s': timing.updateSec,
    'time/reanalyse_s': timing.reanalyseSec,
    'time/iteration_s': timing.iterationSec,
    'time/updates_per_s': update.steps / Math.max(timing.updateSec, 1e-9),
    'time/elapsed_s': timing.elapsedSec,
    'memory/tensors': tf.memory().numTensors,
    'memory/rss_mb': process.memoryUsage().rss / 2 ** 20,
  };
  for (const [k, v] of Object.entries(update.means)) metrics[`losses/${k}`] = v;
  if (ingested.staleness) {
    metrics['selfplay/staleness'] = ingested.staleness.mean;
    metrics['selfplay/staleness_max'] = ingested.staleness.max;
  }
  return metrics;
}

/**
 * `train.evalEvery`: play the evaluation programs (`muzero.eval`) with the current networks and compare
 * with the XLA-like baseline; recorded as `eval/*` metrics.
 */
async function periodicEval(ctx: LearnerContext, state: MuZeroLearnerState): Promise<void> {
  const programs = state.evalPrograms as readonly SelfPlayProgram[];
  const result = await evaluateMuZero(state.networks, programs, {
    search: evalSearchConfig(ctx.config),
    game: state.game,
    seed: mixSeed(ctx.config.seed, 0xe7a1),
  });
  const { summary } = result;
  const record: IterationMetrics = {
    step: state.iteration,
    time: Date.now(),
    'eval/speedup_mean': summary.mean,
    'eval/speedup_median': summary.median,
    'eval/speedup_best': summary.best,
    'eval/at_least_as_good': summary.atLeastAsGood,
    // The report's evaluation chart draws these two: mean return and the at-least-as-good share.
    'eval/reward_mean': result.returnMean,
    'eval/success_rate': summary.atLeastAsGood,
    'eval/programs': summary.programs,
    'eval/wall_s': result.wallSec,
  };
  appendMetrics(ctx.runDir, record);
  await ctx.jobs.pushMetrics(ctx.jobId, record);
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)} %`;
  ctx.log(
    `eval at iteration ${state.iteration} (${summary.programs} programs): speed-up over the XLA-like baseline mean ${pct(summary.mean)}, median ${pct(summary.median)}, ` +
      `best ${pct(summary.best)}; at least as good on ${(100 * summary.atLeastAsGood).toFixed(0)} % (${result.wallSec.toFixed(1)} s)`,
  );
}

async function saveState(ctx: LearnerContext, state: MuZeroLearnerState, elapsedThisRunSec: number): Promise<void> {
  const dir = path.join(ctx.runDir, 'checkpoints');
  const saved: SavedMuZeroState = {
    iteration: state.iteration,
    programs: state.sampler.state(),
    rng: state.rng.state(),
    elapsedSec: state.elapsedBefore + elapsedThisRunSec,
    jobId: ctx.jobId,
    counters: { ...state.counters },
  };
  const where = await saveCheckpoint(dir, state.iteration, {
    model: await state.networks.getWeightsAsync(),
    optimizer: portableOptimizerState(await state.optimizer.getState(), state.networks),
    state: saved,
  });
  await pruneCheckpoints(dir, ctx.config.train.keepCheckpoints, { alwaysKeep: [0] });
  ctx.log(`checkpoint: ${where}`);
}

/** Optimizer moments are keyed by tfjs variable names (`muzero_1/…`); checkpoints store them by parameter name. */
