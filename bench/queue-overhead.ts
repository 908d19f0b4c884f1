/**
 * Queue overhead as a share of iteration time at quickstart scale. The same groups (same tasks, same
 * seeds, same weights) are run one iteration (tasksPerIteration groups) at a time
 *   (a) directly in this process with `runGroup` — no Redis, no serialisation;
 *   (b) through the real queue with one `horizon worker` process, collected the way the learner collects
 *       them (`dispatchGroups` + `collectGroups` with its default poll interval);
 *   (b′) the same path, but the results hash is watched every 10 ms, so the time is the queue's own
 *       transport cost without the learner's polling delay.
 * Overhead = (b − a)/b. The order of the three rotates per iteration so a drift in machine load does not
 * favour one. Every path generates identical tokens (checked and printed). CPU seconds of every process
 * involved are reported too: on a shared machine they separate work the queue adds from waiting for a core.
 *
 * A second table gives the add→result latency of near-empty groups (K = 2, one turn of one token),
 * enqueued one at a time, next to the in-process time of the same group.
 *
 *   npx tsx bench/queue-overhead.ts [--iterations 15] [--latency-groups 50] [--config configs/quickstart.yaml]
 *                                   [--set k=v]… [--backend wasm] [--weights model.safetensors] [--json out.json]
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Rng, mixSeed } from '../core/rng.js';
import type { ResolvedConfig } from '../configs/resolve.js';
import type { EnvDefinition, TaskRef } from '../envs/types.js';
import { BYTE_TOKENIZER_VOCAB_SIZE } from '../models/tokenizer.js';
import { TransformerPolicy, resolvePolicyConfig } from '../models/transformer.js';
import { connectRedis } from '../rollout/connection.js';
import { episodeLimits, runGroup } from '../rollout/episode.js';
import { rolloutId } from '../rollout/protocol.js';
import { collectGroups, dispatchGroups } from '../trainer/collect.js';
import {
  benchConfig,
  countWork,
  createRunningJob,
  intFlag,
  machineInfo,
  machineLine,
  markdownTable,
  mean,
  parseFlags,
  percentile,
  policyBytes,
  processCpuSeconds,
  progress,
  publishWeights,
  rolloutQueue,
  runIterationThroughQueue,
  selectWorkerBackend,
  spawnWorker,
  startBenchRedis,
  taskSampler,
  writeJsonIfAsked,
  type WorkerProcess,
} from './lib.js';

const USAGE = `npx tsx bench/queue-overhead.ts [flags]
  --iterations N      measured iterations of tasksPerIteration groups each, per path (default 15)
  --latency-groups N  near-empty groups for the add→result latency table (default 50; 0 skips it)
  --config FILE       run config (default configs/quickstart.yaml)
  --set key=value     config override (repeatable)
  --backend NAME      tfjs backend of both sides (default: the config's worker backend)
  --weights FILE      a model.safetensors to roll out instead of the seed's initial weights
  --straggler-stop    keep the config's straggler early stop (default: off, so every path runs every episode)
  --json FILE         also write the measurements as JSON`;

const PREFIX = 'bench-queue-overhead';
/** Training jobs of the two queue paths: same seeds (seeds do not depend on the job id), separate group job ids. */
const JOB_IDS = { learner: 'bench-qo-learner', transport: 'bench-qo-transport' } as const;
/** Iteration numbers of the latency groups start here (apart from the measured iterations). */
const LATENCY_ITERATION_BASE = 100_000;
/** Poll interval of the transport path (b′). */
const TRANSPORT_POLL_MS = 10;

/** The three ways one iteration's groups are run. */
const PATHS = ['direct', 'learner', 'transport'] as const;
type PathName = (typeof PATHS)[number];

const PATH_LABELS: Record<PathName, string> = {
  direct: '(a) in process, runGroup',
  learner: '(b) queue, collected like the learner (collectGroups)',
  transport: `(b′) queue, results watched every ${TRANSPORT_POLL_MS} ms`,
};

async function main(): Promise<void> {
  const flags = parseFlags(USAGE, {
    iterations: '15',
    'latency-groups': '50',
    config: 'configs/quickstart.yaml',
    set: [] as string[],
    backend: '',
    weights: '',
    'straggler-stop': false,
    json: '',
  });
  const iterations = intFlag(flags.iterations, 'iterations');
  const latencyGroups = intFlag(flags['latency-groups'], 'latency-groups', 0);
  const config = benchConfig(flags.config, [...flags.set, ...(flags['straggler-stop'] ? [] : ['rollout.stragglerStop.enabled=false'])]);
  const loadAtStart = os.loadavg()[0];
  const backend = await selectWorkerBackend(config, flags.backend);
  const weights = policyBytes(config, flags.weights || undefined);
  const { sampler, env, envOptions } = await taskSampler(config);
  const policy = new TransformerPolicy(resolvePolicyConfig({ ...config.model, vocabSize: BYTE_TOKENIZER_VOCAB_SIZE }), config.seed);
  policy.loadSafetensors(weights);

  const redisService = await startBenchRedis();
  const url = redisService.server.url;
  const redis = await connectRedis(url);
  const queue = rolloutQueue(url, PREFIX);
  let worker: WorkerProcess | undefined;
  try {
    let attempt = 0;
    for (const jobId of Object.values(JOB_IDS)) {
      attempt = await createRunningJob(redis, url, PREFIX, config, jobId);
      await publishWeights(redis, PREFIX, jobId, 0, weights);
    }
    worker = spawnWorker(url, PREFIX, { backend: flags.backend || undefined });
    await worker.ready;
    const side: Side = { redis, queue, attempt, config, policy, env, envOptions, workerPid: worker.pid, redisPid: redisService.server.pid };

    // Warm-up of every path on the same iteration: compiles the code paths, loads backend, env and weights.
    const warmTasks = sampler.next(config.rollout.tasksPerIteration);
    for (const path of PATHS) await runPath(side, path, 0, warmTasks);

    const rows: IterationRow[] = [];
    for (let i = 1; i <= iterations; i++) {
      const tasks = sampler.next(config.rollout.tasksPerIteration);
      const order = PATHS.map((_, j) => PATHS[(i + j) % PATHS.length]);
      const runs = {} as Record<PathName, PathRun>;
      for (const path of order) runs[path] = await runPath(side, path, i, tasks);
      rows.push({
        iteration: i,
        runs,
        identical: PATHS.every((p) => runs[p].generatedTokens === runs.direct.generatedTokens && runs[p].episodes === runs.direct.episodes),
      });
      progress(`iteration ${i}/${iterations}: ${PATHS.map((p) => `${p} ${runs[p].wallMs.toFixed(0)} ms`).join(', ')}`);
    }

    const latency = latencyGroups > 0 ? await measureLatency(side, sampler.next(latencyGroups)) : [];
    report({ rows, latency, config, machine: machineLine(machineInfo(worker.backend() ?? backend, loadAtStart)), json: flags.json });
  } finally {
    await worker?.stop();
    await queue.close();
    redis.disconnect();
    await redisService.stop();
    policy.dispose();
  }
}

interface Side {
  readonly redis: Redis;
  readonly queue: Queue;
  readonly attempt: number;
  readonly config: ResolvedConfig;
  readonly policy: TransformerPolicy;
  readonly env: EnvDefinition;
  readonly envOptions: unknown;
  readonly workerPid: number;
  readonly redisPid: number;
}

/** CPU seconds spent during one run, by process. */
interface CpuSeconds {
  /** This process: the groups themselves for (a); dispatch and collection (the learner's part) for (b), (b′). */
  readonly bench: number;
  readonly worker: number;
  readonly redis: number;
}

interface PathRun {
  readonly wallMs: number;
  readonly cpu: CpuSeconds;
  readonly episodes: number;
  readonly generatedTokens: number;
}

interface IterationRow {
  readonly iteration: number;
  readonly runs: Record<PathName, PathRun>;
  readonly identical: boolean;
}

function runPath(side: Side, path: PathName, iteration: number, tasks: readonly TaskRef[]): Promise<PathRun> {
  switch (path) {
    case 'direct':
      return inProcessIteration(side, iteration, tasks);
    case 'learner':
      return learnerIteration(side, iteration, tasks);
    case 'transport':
      return transportIteration(side, JOB_IDS.transport, iteration, tasks, side.config, TRANSPORT_POLL_MS);
  }
}

/** (a): the groups one after another in this process, with exactly the inputs a worker would build. */
async function inProcessIteration(side: Side, iteration: number, tasks: readonly TaskRef[], config = side.config): Promise<PathRun> {
  const cpuBefore = cpuSnapshot(side);
  const started = performance.now();
  let episodes = 0;
  let generatedTokens = 0;
  for (let groupIndex = 0; groupIndex < tasks.length; groupIndex++) {
    const outcome = await runGroupLikeWorker(side, config, iteration, groupIndex, tasks[groupIndex]);
    episodes += outcome.trajectories.length;
    generatedTokens += outcome.generatedTokens;
  }
  const wallMs = performance.now() - started;
  return { wallMs, cpu: cpuSince(side, cpuBefore), episodes, generatedTokens };
}

/** runGroup with the limits, seeds and ids `RolloutWorker` derives for a first attempt of the group job. */
function runGroupLikeWorker(side: Side, config: ResolvedConfig, iteration: number, groupIndex: number, task: TaskRef) {
  const K = config.rollout.groupSize;
  const firstJobAttempt = 0;
  const jobId = JOB_IDS.learner;
  return runGroup(side.policy, {
    env: side.env,
    envOptions: side.envOptions,
    task,
    groupSize: K,
    limits: episodeLimits(config),
    rngs: Array.from({ length: K }, (_, k) => new Rng(mixSeed(config.seed, side.attempt, iteration, groupIndex, k, firstJobAttempt))),
    rolloutIds: Array.from({ length: K }, (_, k) => rolloutId(jobId, side.attempt, iteration, groupIndex, k)),
    groupId: `${jobId}/${side.attempt}/${iteration}/${groupIndex}`,
    policyVersion: 0,
  });
}

/** (b): dispatch and collect exactly as the learner's iteration does (collectGroups at its default poll interval). */
async function learnerIteration(side: Side, iteration: number, tasks: readonly TaskRef[]): Promise<PathRun> {
  const request = {
    queue: side.queue,
    redis: side.redis,
    prefix: PREFIX,
    jobId: JOB_IDS.learner,
    attempt: side.attempt,
    iteration,
    policyVersion: 0,
    tasks,
    config: side.config,
  };
  const cpuBefore = cpuSnapshot(side);
  const started = performance.now();
  await dispatchGroups(request);
  const collected = await collectGroups(request);
  const wallMs = performance.now() - started;
  const cpu = cpuSince(side, cpuBefore);
  if (collected.failedGroups.length)
    throw new Error(`iteration ${iteration}: groups failed: ${collected.failedGroups.map((f) => f.reason).join('; ')}`);
  const episodes = collected.groups.reduce((a, g) => a + g.trajectories.length, 0);
  return { wallMs, cpu, episodes, generatedTokens: collected.generatedTokens };
}

/** (b′): the same groups through the queue, with the results hash watched every `pollMs`. */
async function transportIteration(
  side: Side,
  jobId: string,
  iteration: number,
  tasks: readonly TaskRef[],
  config: ResolvedConfig,
  pollMs: number,
): Promise<PathRun> {
  const cpuBefore = cpuSnapshot(side);
  const run = await runIterationThroughQueue({
    queue: side.queue,
    redis: side.redis,
    prefix: PREFIX,
    jobId,
    attempt: side.attempt,
    iteration,
    policyVersion: 0,
    tasks,
    config,
    pollMs,
  });
  const cpu = cpuSince(side, cpuBefore);
  const work = countWork(run.results);
  return { wallMs: run.wallMs, cpu, episodes: work.episodes, generatedTokens: work.generatedTokens };
}

function cpuSnapshot(side: Side): CpuSeconds {
  const own = process.cpuUsage();
  return {
    bench: (own.user + own.system) / 1e6,
    worker: processCpuSeconds(side.workerPid) ?? Number.NaN,
    redis: processCpuSeconds(side.redisPid) ?? Number.NaN,
  };
}

function cpuSince(side: Side, before: CpuSeconds): CpuSeconds {
  const now = cpuSnapshot(side);
  return { bench: now.bench - before.bench, worker: now.worker - before.worker, redis: now.redis - before.redis };
}

interface LatencySample {
  readonly queueMs: number;
  readonly directMs: number;
}

/** Near-empty groups one at a time: add→result through the queue (watched every 1 ms), and the same group in process. */
async function measureLatency(side: Side, tasks: readonly TaskRef[]): Promise<LatencySample[]> {
  const tiny = nearEmptyGroupConfig(side.config);
  const samples: LatencySample[] = [];
  // One unmeasured group each way first (the new rollout limits take other code paths).
  await inProcessIteration(side, LATENCY_ITERATION_BASE - 1, [tasks[0]], tiny);
  await transportIteration(side, JOB_IDS.transport, LATENCY_ITERATION_BASE - 1, [tasks[0]], tiny, 1);
  for (let i = 0; i < tasks.length; i++) {
    const iteration = LATENCY_ITERATION_BASE + i;
    const queued = await transportIteration(side, JOB_IDS.transport, iteration, [tasks[i]], tiny, 1);
    const direct = await inProcessIteration(side, iteration, [tasks[i]], tiny);
    samples.push({ queueMs: queued.wallMs, directMs: direct.wallMs });
  }
  progress(`latency: ${tasks.length} near-empty groups done`);
  return samples;
}

/** The config with K = 2 and one one-token turn per episode: a group that does almost no work. */
function nearEmptyGroupConfig(config: ResolvedConfig): ResolvedConfig {
  return { ...config, rollout: { ...config.rollout, groupSize: 2, maxTurns: 1, maxTokensPerTurn: 1 } };
}

function report(input: { rows: IterationRow[]; latency: LatencySample[]; config: ResolvedConfig; machine: string; json: string }): void {
  const { rows, latency, config } = input;
  const wallSec = (p: PathName) => rows.map((r) => r.runs[p].wallMs / 1000);
  const cpuOf = (run: PathRun) => run.cpu.bench + run.cpu.worker + run.cpu.redis;
  const totalCpu = (p: PathName) => mean(rows.map((r) => (p === 'direct' ? r.runs[p].cpu.bench : cpuOf(r.runs[p]))));
  const direct = mean(wallSec('direct'));
  const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
  const mainRows = PATHS.map((p) => {
    const mine = wallSec(p);
    const perIteration = rows.map((r) => (r.runs[p].wallMs - r.runs.direct.wallMs) / r.runs[p].wallMs);
    const isDirect = p === 'direct';
    return [
      PATH_LABELS[p],
      mean(mine),
      percentile(mine, 50),
      isDirect ? '–' : pct((mean(mine) - direct) / mean(mine)),
      isDirect ? '–' : `${pct(Math.min(...perIteration))} … ${pct(Math.max(...perIteration))}`,
      totalCpu(p),
      isDirect ? '–' : pct((totalCpu(p) - totalCpu('direct')) / totalCpu(p)),
    ];
  });
  const cpuRows = (['learner', 'transport'] as const).map((p) => [
    PATH_LABELS[p],
    mean(rows.map((r) => r.runs[p].cpu.worker)),
    mean(rows.map((r) => r.runs[p].cpu.redis)),
    mean(rows.map((r) => r.runs[p].cpu.bench)),
  ]);
  const lines = [
    `## Queue overhead (${config.name}: ${config.rollout.tasksPerIteration} groups × K=${config.rollout.groupSize} per iteration, 1 worker, ${rows.length} iterations per path)`,
    '',
    input.machine,
    '',
    markdownTable(
      ['path', 'wall s/iter', 'median', 'overhead (b−a)/b', 'per-iteration min … max', 'CPU s/iter (all processes)', 'CPU overhead'],
      mainRows,
    ),
    '',
    `Identical work on every path (same tasks, seeds and weights): ${rows.every((r) => r.identical) ? 'yes' : `NO (${rows.filter((r) => !r.identical).length} iterations differ)`}.`,
    'Wall time runs from enqueue to the last result (for (b): until collectGroups returns). CPU s/iter adds the worker, redis-server and',
    'this process (dispatch and collection) for (b) and (b′); for (a) it is this process alone.',
    '',
    'CPU seconds per iteration by process, queue paths:',
    '',
    markdownTable(['path', 'worker', 'redis-server', 'learner side (dispatch + collect)'], cpuRows),
  ];
  if (latency.length) {
    const queueMs = latency.map((s) => s.queueMs);
    const directMs = latency.map((s) => s.directMs);
    const extra = latency.map((s) => s.queueMs - s.directMs);
    lines.push(
      '',
      `### Add→result latency of near-empty groups (K=2, 1 turn of 1 token; ${latency.length} groups, one at a time)`,
      '',
      markdownTable(
        ['', 'p50 ms', 'p95 ms', 'mean ms'],
        [
          ['through the queue (add → result visible, watched every 1 ms)', percentile(queueMs, 50), percentile(queueMs, 95), mean(queueMs)],
          ['same group in process', percentile(directMs, 50), percentile(directMs, 95), mean(directMs)],
          ['difference (queue cost per group)', percentile(extra, 50), percentile(extra, 95), mean(extra)],
        ],
      ),
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  writeJsonIfAsked(input.json || undefined, { benchmark: 'queue-overhead', machine: input.machine, rows, latency });
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench/queue-overhead: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
