/**
 * Rollout throughput through the real queue: a throwaway redis-server, a training-job record in the
 * running state, policy weights v0 in the WeightStore, N groups enqueued with the learner's own
 * `dispatchGroups`, and 1, then 2, `horizon worker` processes taking them. Reports episodes/s and
 * generated tokens/s from the results the workers write, wall time from enqueue to the last result, and
 * the speed-up of W workers over one.
 *
 * Steady state: the workers are started first, wait until they log "ready", and then run warm-up groups
 * (each worker must finish at least one, which loads the backend, the environment and the weights)
 * before the measured groups are enqueued. Every worker count runs the same tasks with the same seeds,
 * so each row does identical work (the generated-token counts show it).
 *
 *   npx tsx bench/rollout.ts [--groups 320] [--workers 1,2] [--config configs/quickstart.yaml] [--set k=v]…
 *                            [--backend wasm] [--weights model.safetensors] [--straggler-stop] [--json out.json]
 */
import os from 'node:os';
import { connectRedis } from '../rollout/connection.js';
import {
  benchConfig,
  countWork,
  createRunningJob,
  intFlag,
  machineInfo,
  machineLine,
  markdownTable,
  parseFlags,
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

const USAGE = `npx tsx bench/rollout.ts [flags]
  --groups N          measured groups per worker count (default 320 = 20 quickstart iterations)
  --workers LIST      worker counts to measure, comma-separated (default 1,2)
  --config FILE       run config (default configs/quickstart.yaml)
  --set key=value     config override (repeatable)
  --backend NAME      workers' tfjs backend (default: the config's)
  --weights FILE      a model.safetensors to roll out instead of the seed's initial weights
  --straggler-stop    keep the config's straggler early stop (default: off, so every episode runs to its end)
  --json FILE         also write the measurements as JSON`;

/** Iteration number of the measured groups: the same in every phase, so seeds and tasks match. */
const MEASURED_ITERATION = 1000;

async function main(): Promise<void> {
  const flags = parseFlags(USAGE, {
    groups: '320',
    workers: '1,2',
    config: 'configs/quickstart.yaml',
    set: [] as string[],
    backend: '',
    weights: '',
    'straggler-stop': false,
    json: '',
  });
  const groups = intFlag(flags.groups, 'groups');
  const workerCounts = flags.workers.split(',').map((w) => intFlag(w.trim(), 'workers'));
  const overrides = [...flags.set, ...(flags['straggler-stop'] ? [] : ['rollout.stragglerStop.enabled=false'])];
  const config = benchConfig(flags.config, overrides);
  const loadAtStart = os.loadavg()[0];
  const localBackend = await selectWorkerBackend(config, flags.backend);
  const weights = policyBytes(config, flags.weights || undefined);
  const { sampler } = await taskSampler(config);
  const measuredTasks = sampler.next(groups);

  const redisService = await startBenchRedis();
  const url = redisService.server.url;
  const redis = await connectRedis(url);
  const rows: PhaseResult[] = [];
  let workers: WorkerProcess[] = [];
  try {
    for (const count of workerCounts) {
      const prefix = `bench-rollout-w${count}`;
      const jobId = `bench-rollout-w${count}`;
      const attempt = await createRunningJob(redis, url, prefix, config, jobId);
      await publishWeights(redis, prefix, jobId, 0, weights);
      const queue = rolloutQueue(url, prefix);
      try {
        progress(`${count} worker(s): starting`);
        workers = Array.from({ length: count }, () => spawnWorker(url, prefix, { backend: flags.backend || undefined }));
        await Promise.all(workers.map((w) => withTimeout(w.ready, 120_000, `worker ${w.pid} to log "ready"`)));
        const base = { queue, redis, prefix, jobId, attempt, policyVersion: 0, config };
        // Warm-up until every worker has finished a group (backend, env and weights loaded, code compiled).
        const warmed = new Set<string>();
        for (let iteration = 0; warmed.size < count; iteration++) {
          if (iteration >= 10) throw new Error(`after ${iteration} warm-up rounds only ${warmed.size} of ${count} workers took a group`);
          const warm = await runIterationThroughQueue({ ...base, iteration, tasks: sampler.next(2 * count) });
          for (const r of warm.results) warmed.add(r.workerId);
        }
        progress(`${count} worker(s): warm; measuring ${groups} groups`);
        const cpuBefore = workers.map((w) => processCpuSeconds(w.pid) ?? Number.NaN);
        const run = await runIterationThroughQueue({ ...base, iteration: MEASURED_ITERATION, tasks: measuredTasks });
        const workerCpuSec = workers.reduce((a, w, i) => a + ((processCpuSeconds(w.pid) ?? Number.NaN) - cpuBefore[i]), 0);
        const work = countWork(run.results);
        const perWorker = new Map<string, number>();
        for (const r of run.results) perWorker.set(r.workerId, (perWorker.get(r.workerId) ?? 0) + 1);
        rows.push({
          workers: count,
          groups,
          episodes: work.episodes,
          generatedTokens: work.generatedTokens,
          wallSec: run.wallMs / 1000,
          episodesPerSec: work.episodes / (run.wallMs / 1000),
          tokensPerSec: work.generatedTokens / (run.wallMs / 1000),
          busyShare: work.groupWallMs / (count * run.wallMs),
          workerCores: workerCpuSec / (run.wallMs / 1000),
          cpuMsPerEpisode: (1000 * workerCpuSec) / work.episodes,
          groupsPerWorker: [...perWorker.values()].sort((a, b) => b - a),
          backend: workers.map((w) => w.backend()).find((b) => b !== undefined) ?? localBackend,
        });
        progress(`${count} worker(s): ${work.episodes} episodes in ${(run.wallMs / 1000).toFixed(1)} s`);
      } finally {
        await Promise.all(workers.map((w) => w.stop()));
        workers = [];
        await queue.close();
      }
    }
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    redis.disconnect();
    await redisService.stop();
  }
  report(rows, config.name, flags, machineLine(machineInfo(rows[0]?.backend ?? localBackend, loadAtStart)));
}

interface PhaseResult {
  readonly workers: number;
  readonly groups: number;
  readonly episodes: number;
  readonly generatedTokens: number;
  readonly wallSec: number;
  readonly episodesPerSec: number;
  readonly tokensPerSec: number;
  /** Σ group wall time / (workers · wall): how much of the time the workers were inside a group. */
  readonly busyShare: number;
  /** CPU seconds the workers used per wall second: how many cores they actually got. */
  readonly workerCores: number;
  /** Worker CPU time per episode: the cost of the work itself, independent of how many cores were free. */
  readonly cpuMsPerEpisode: number;
  readonly groupsPerWorker: number[];
  readonly backend: string;
}

function report(
  rows: readonly PhaseResult[],
  configName: string,
  flags: { groups: string; json: string; config: string },
  machine: string,
): void {
  const baseline = rows.find((r) => r.workers === 1);
  const sameWork = rows.every((r) => r.generatedTokens === rows[0].generatedTokens && r.episodes === rows[0].episodes);
  const lines = [
    `## Rollout throughput (${configName}, ${flags.groups} groups, through Redis/BullMQ)`,
    '',
    machine,
    '',
    markdownTable(
      [
        'workers',
        'groups',
        'episodes',
        'gen. tokens',
        'wall s',
        'episodes/s',
        'tokens/s',
        'speed-up',
        'worker busy',
        'worker CPU (cores)',
        'CPU ms/episode',
        'groups per worker',
      ],
      rows.map((r) => [
        r.workers,
        r.groups,
        r.episodes,
        r.generatedTokens,
        r.wallSec,
        r.episodesPerSec,
        r.tokensPerSec,
        baseline ? `${(r.episodesPerSec / baseline.episodesPerSec).toFixed(2)}×` : '–',
        `${(100 * r.busyShare).toFixed(0)} %`,
        r.workerCores.toFixed(2),
        r.cpuMsPerEpisode,
        r.groupsPerWorker.join('/'),
      ]),
    ),
    '',
    `Identical work in every row (same tasks and seeds): ${sameWork ? 'yes' : 'NO — the rows generated different token counts'}.`,
    'Wall time runs from enqueue to the last result; worker start-up and the first group of each worker are excluded (warm-up).',
    '"worker busy": share of the wall time the workers spent inside a group; "worker CPU": CPU seconds of all workers per wall second',
    '(below the worker count when other processes take the cores); "CPU ms/episode": worker CPU time per episode (equal rows = no per-worker overhead).',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  writeJsonIfAsked(flags.json || undefined, { benchmark: 'rollout', config: flags.config, machine, rows });
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench/rollout: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
