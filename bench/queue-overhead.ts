/**
 * Queue overhead as a share of iteration time at quickstart scale. The same groups (same tasks, same
 * seeds, same weights) are run
 *   (a) directly in this process with `runGroup` — no Redis, no serialisation — and
 *   (b) through the real queue with one `horizon worker` process (dispatchGroups → BullMQ → worker →
 *       results hash),
 * one iteration (tasksPerIteration groups) at a time, alternating which goes first. Overhead = (b − a)/b.
 * Both sides generate identical tokens (checked and printed), so the difference is what the queue costs:
 * payload validation, config resolution, the job-status check, Redis round trips per turn, result
 * serialisation, BullMQ's locking and the learner-side polling.
 *
 * A second table gives the add→result latency of near-empty groups (K = 2, one turn of one token),
 * enqueued one at a time, next to the in-process time of the same group.
 *
 *   npx tsx bench/queue-overhead.ts [--iterations 20] [--latency-groups 50] [--config configs/quickstart.yaml]
 *                                   [--set k=v]… [--backend wasm] [--weights model.safetensors] [--json out.json]
 */
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Rng, mixSeed } from '../core/rng.js';
import type { ResolvedConfig } from '../configs/resolve.js';
import type { EnvDefinition, TaskRef } from '../envs/types.js';
import { BYTE_TOKENIZER_VOCAB_SIZE } from '../models/tokenizer.js';
import { TransformerPolicy, resolvePolicyConfig } from '../models/transformer.js';
import { connectRedis } from '../rollout/connection.js';
import { runGroup } from '../rollout/episode.js';
import { rolloutId } from '../rollout/protocol.js';
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
  processCpuSeconds,
  policyBytes,
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
  --iterations N      measured iterations of tasksPerIteration groups each (default 20)
  --latency-groups N  near-empty groups for the add→result latency table (default 50; 0 skips it)
  --config FILE       run config (default configs/quickstart.yaml)
  --set key=value     config override (repeatable)
  --backend NAME      tfjs backend of both sides (default: the config's worker backend)
  --weights FILE      a model.safetensors to roll out instead of the seed's initial weights
  --straggler-stop    keep the config's straggler early stop (default: off, so both sides run every episode)
  --json FILE         also write the measurements as JSON`;

const JOB_ID = 'bench-queue-overhead';
const PREFIX = 'bench-queue-overhead';
/** Iteration numbers of the latency groups start here (apart from the measured iterations). */
const LATENCY_ITERATION_BASE = 100_000;

async function main(): Promise<void> {
  const flags = parseFlags(USAGE, {
    iterations: '20',
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
    const attempt = await createRunningJob(redis, url, PREFIX, config, JOB_ID);
    await publishWeights(redis, PREFIX, JOB_ID, 0, weights);
    worker = spawnWorker(url, PREFIX, { backend: flags.backend || undefined });
    await worker.ready;
    const side: Side = { redis, queue, attempt, config, policy, env, envOptions, workerPid: worker.pid, redisPid: redisService.server.pid };

    // Warm-up of both sides on the same iteration: compiles the code paths, loads backend, env and weights.
    const warmTasks = sampler.next(config.rollout.tasksPerIteration);
    await inProcessIteration(side, 0, warmTasks);
    await queuedIteration(side, 0, warmTasks);

    const rows: IterationRow[] = [];
    for (let i = 1; i <= iterations; i++) {
      const tasks = sampler.next(config.rollout.tasksPerIteration);
      // Alternate the order so a drift in machine load does not always favour the same side.
      const first = i % 2 === 1 ? 'direct' : 'queue';
      const direct = first === 'direct' ? await inProcessIteration(side, i, tasks) : undefined;
      const queued = await queuedIteration(side, i, tasks);
      const directRun = direct ?? (await inProcessIteration(side, i, tasks));
      rows.push({
        iteration: i,
        groups: tasks.length,
        episodes: queued.episodes,
        directSec: directRun.wallMs / 1000,
        queueSec: queued.wallMs / 1000,
        directCpu: directRun.cpu,
        queueCpu: queued.cpu,
        identical: directRun.generatedTokens === queued.generatedTokens && directRun.episodes === queued.episodes,
      });
      progress(`iteration ${i}/${iterations}: direct ${directRun.wallMs.toFixed(0)} ms, queue ${queued.wallMs.toFixed(0)} ms`);
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

/** CPU seconds spent on one side of the comparison, by process. */
interface CpuSeconds {
  /** This process: the groups themselves for (a); dispatch and result polling for (b). */
  readonly bench: number;
  readonly worker: number;
  readonly redis: number;
}

interface SideRun {
  readonly wallMs: number;
  readonly cpu: CpuSeconds;
  readonly episodes: number;
  readonly generatedTokens: number;
}

interface IterationRow {
  readonly iteration: number;
  readonly groups: number;
  readonly episodes: number;
  readonly directSec: number;
  readonly queueSec: number;
  readonly directCpu: CpuSeconds;
  readonly queueCpu: CpuSeconds;
  readonly identical: boolean;
}

/** (a): the groups one after another in this process, with exactly the inputs a worker would build. */
async function inProcessIteration(side: Side, iteration: number, tasks: readonly TaskRef[], config = side.config): Promise<SideRun> {
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
  return runGroup(side.policy, {
    env: side.env,
    envOptions: side.envOptions,
    task,
    groupSize: K,
    limits: {
      maxTurns: config.rollout.maxTurns,
      maxTokensPerTurn: config.rollout.maxTokensPerTurn,
      maxObservationTokens: config.rollout.maxObservationTokens,
      maxContextTokens: config.derived.maxContextTokens,
      temperature: config.rollout.temperature,
      trainOnEndOfTurn: config.rollout.trainOnEndOfTurn,
      episodeRetries: config.rollout.episodeRetries,
    },
    rngs: Array.from({ length: K }, (_, k) => new Rng(mixSeed(config.seed, side.attempt, iteration, groupIndex, k, firstJobAttempt))),
    rolloutIds: Array.from({ length: K }, (_, k) => rolloutId(JOB_ID, side.attempt, iteration, groupIndex, k)),
    groupId: `${JOB_ID}/${side.attempt}/${iteration}/${groupIndex}`,
    policyVersion: 0,
  });
}

/** (b): the same groups through the queue and one worker process. */
async function queuedIteration(side: Side, iteration: number, tasks: readonly TaskRef[], config = side.config, pollMs = Number(process.env.BENCH_POLL ?? 10)): Promise<SideRun> {
  const cpuBefore = cpuSnapshot(side);
  const run = await runIterationThroughQueue({
    queue: side.queue,
    redis: side.redis,
    prefix: PREFIX,
    jobId: JOB_ID,
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
  return { bench: (own.user + own.system) / 1e6, worker: processCpuSeconds(side.workerPid) ?? Number.NaN, redis: processCpuSeconds(side.redisPid) ?? Number.NaN };
}

function cpuSince(side: Side, before: CpuSeconds): CpuSeconds {
  const now = cpuSnapshot(side);
  return { bench: now.bench - before.bench, worker: now.worker - before.worker, redis: now.redis - before.redis };
}

interface LatencySample {
  readonly queueMs: number;
  readonly directMs: number;
}

/** Near-empty groups one at a time: add→result through the queue, and the same group in process. */
async function measureLatency(side: Side, tasks: readonly TaskRef[]): Promise<LatencySample[]> {
  const tiny = benchTinyGroupConfig(side.config);
  const samples: LatencySample[] = [];
  // One unmeasured group each way first (the new rollout limits take other code paths).
  await inProcessIteration(side, LATENCY_ITERATION_BASE - 1, [tasks[0]], tiny);
  await queuedIteration(side, LATENCY_ITERATION_BASE - 1, [tasks[0]], tiny, 1);
  for (let i = 0; i < tasks.length; i++) {
    const iteration = LATENCY_ITERATION_BASE + i;
    const queued = await queuedIteration(side, iteration, [tasks[i]], tiny, 1);
    const direct = await inProcessIteration(side, iteration, [tasks[i]], tiny);
    samples.push({ queueMs: queued.wallMs, directMs: direct.wallMs });
  }
  progress(`latency: ${tasks.length} near-empty groups done`);
  return samples;
}

/** The config with K = 2 and one one-token turn per episode: a group that does almost no work. */
function benchTinyGroupConfig(config: ResolvedConfig): ResolvedConfig {
  return { ...config, rollout: { ...config.rollout, groupSize: 2, maxTurns: 1, maxTokensPerTurn: 1 } };
}

function report(input: { rows: IterationRow[]; latency: LatencySample[]; config: ResolvedConfig; machine: string; json: string }): void {
  const { rows, latency, config } = input;
  const sumDirect = rows.reduce((a, r) => a + r.directSec, 0);
  const sumQueue = rows.reduce((a, r) => a + r.queueSec, 0);
  const overall = (sumQueue - sumDirect) / sumQueue;
  const perIteration = rows.map((r) => (r.queueSec - r.directSec) / r.queueSec);
  const perIter = (pick: (r: IterationRow) => number) => rows.reduce((a, r) => a + pick(r), 0) / rows.length;
  const queueCpuTotal = (r: IterationRow) => r.queueCpu.worker + r.queueCpu.redis + r.queueCpu.bench;
  const lines = [
    `## Queue overhead (${config.name}: ${config.rollout.tasksPerIteration} groups × K=${config.rollout.groupSize} per iteration, 1 worker)`,
    '',
    input.machine,
    '',
    markdownTable(
      ['', 'iterations', 'direct s/iter (a)', 'queue s/iter (b)', 'overhead (b−a)/b', 'identical work'],
      [
        [
          'total',
          rows.length,
          sumDirect / rows.length,
          sumQueue / rows.length,
          `${(100 * overall).toFixed(1)} %`,
          rows.every((r) => r.identical) ? 'yes' : `NO (${rows.filter((r) => !r.identical).length} differ)`,
        ],
        ['per-iteration median', rows.length, percentile(rows.map((r) => r.directSec), 50), percentile(rows.map((r) => r.queueSec), 50), `${(100 * percentile(perIteration, 50)).toFixed(1)} %`, ''],
        ['per-iteration min … max', '', '', '', `${(100 * Math.min(...perIteration)).toFixed(1)} … ${(100 * Math.max(...perIteration)).toFixed(1)} %`, ''],
      ],
    ),
    '',
    '(a) runs the groups with runGroup in the benchmark process; (b) sends the same groups (same tasks, seeds and weights) through',
    'dispatchGroups → BullMQ → one `horizon worker` → results hash, timed from enqueue to the last result. Order alternates per iteration.',
    '',
    'CPU time per iteration (s): what each side costs, whether or not it had to wait for a free core.',
    '',
    markdownTable(
      ['direct (a)', 'worker (b)', 'redis-server (b)', 'learner side (b)', 'total (b)', 'CPU overhead (b−a)/b'],
      [[perIter((r) => r.directCpu.bench), perIter((r) => r.queueCpu.worker), perIter((r) => r.queueCpu.redis), perIter((r) => r.queueCpu.bench), perIter(queueCpuTotal), `${(100 * (1 - perIter((r) => r.directCpu.bench) / perIter(queueCpuTotal))).toFixed(1)} %`]],
    ),
    '',
    '"learner side" is this process during (b): dispatchGroups and polling the results hash every 10 ms.',
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
          ['through the queue (add → result visible)', percentile(queueMs, 50), percentile(queueMs, 95), mean(queueMs)],
          ['same group in process', percentile(directMs, 50), percentile(directMs, 95), mean(directMs)],
          ['difference (queue cost per group)', percentile(extra, 50), percentile(extra, 95), mean(extra)],
        ],
      ),
      '',
      'The learner-side poll runs every 1 ms here (the learner itself polls every 150 ms by default, which adds up to that much per iteration).',
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  writeJsonIfAsked(input.json || undefined, { benchmark: 'queue-overhead', machine: input.machine, overhead: overall, rows, latency });
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench/queue-overhead: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
