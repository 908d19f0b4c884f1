/**
 * The local-run supervisor of `horizon train` and a local `horizon resume`: an embedded redis-server
 * persisted in the run directory (unless a Redis URL is given), the learner in this process, rollout
 * worker children restarted when they crash (up to a limit), the dashboard, and a clean stop on Ctrl-C.
 */
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadConfigFile, resolveConfig } from '../configs/resolve.js';
import { startDashboard, type DashboardHandle } from '../dashboard/server.js';
import { connectRedis, resolveRedisUrl } from '../rollout/connection.js';
import { JobControl } from '../rollout/jobs.js';
import { jobKeys } from '../rollout/protocol.js';
import { startRedisServer, stopOnExit, type RedisServerHandle } from '../rollout/redis-server.js';
import { readMetricsFile } from '../trainer/records.js';
import { summaryLine } from '../trainer/report.js';
import { LearnerService } from '../trainer/service.js';
import { nonNegativeInt } from './args.js';
import { ProgressBar } from './progress.js';

/** The executable worker children run: bin/horizon.js, or the single-file build that is running (cli/entry.ts). */
const bin = () => process.env.HORIZON_BIN ?? fileURLToPath(new URL('../bin/horizon.js', import.meta.url));

export interface LocalRun {
  readonly runDir: string;
  readonly jobId: string;
  readonly redisFlag?: string;
  readonly prefix: string;
  readonly workers?: string;
  readonly progress: boolean;
  /** Serve the dashboard on a free loopback port for the length of the run. */
  readonly dashboard: boolean;
  /** A new job's config; absent when resuming. */
  readonly submit?: ReturnType<typeof loadConfigFile>;
}

/** `horizon train` / local `horizon resume`: embedded Redis (persisted in the run dir), learner in this process, worker children. */
export async function runLocal(run: LocalRun): Promise<number> {
  mkdirSync(run.runDir, { recursive: true });
  const bar = new ProgressBar();
  const say = (line: string) => (run.progress ? bar.log(line) : console.error(line));
  let server: RedisServerHandle | undefined;
  let url = resolveRedisUrl(run.redisFlag);
  if (!url) {
    server = await startRedisServer({ dir: path.join(run.runDir, 'redis') });
    stopOnExit(server);
    url = server.url;
    say(`redis-server on ${url} (AOF in ${path.join(run.runDir, 'redis')})`);
  }
  const redis = await connectRedis(url);
  const jobs = new JobControl(redis, url, { prefix: run.prefix });
  const children: ChildProcess[] = [];
  let dashboard: DashboardHandle | undefined;
  let service: LearnerService | undefined;
  let stopping = false;
  const shutdown = async () => {
    stopping = true;
    await dashboard?.close();
    // Workers finish their current group when they can; one that cannot (Redis already gone) is killed.
    await Promise.all(children.map((c) => stopChild(c, 5000)));
    // Every client closes before redis-server stops, so none of them reports a refused reconnect.
    await service?.close().catch(() => undefined);
    await jobs.close();
    redis.disconnect();
    await server?.stop();
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    bar.done();
    console.error(`\n${signal}: stopping workers and redis; continue later with \`horizon resume ${run.jobId}\``);
    void shutdown().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    if (run.submit) {
      await jobs.submit(run.submit, { jobId: run.jobId, enqueue: false });
      writeFileSync(path.join(run.runDir, 'job-id'), `${run.jobId}\n`);
    }
    const config = resolveConfig(await jobs.config(run.jobId), {
      configDir: (await redis.hget(jobKeys(jobs.prefix, run.jobId).status, 'configDir')) ?? undefined,
    });
    const workerCount = run.workers !== undefined ? nonNegativeInt(run.workers, '--workers') : config.workers.count;
    // A worker that keeps crashing is given up; when every worker is, the job is cancelled with the
    // reason instead of waiting for rollouts that can never come.
    const gaveUp = new Set<number>();
    const onGaveUp = (index: number, logFile: string) => {
      gaveUp.add(index);
      if (gaveUp.size < workerCount || stopping) return;
      const lines = readFileSync(logFile, 'utf8')
        .split('\n')
        .filter((l) => l.trim());
      // The error line itself (not the stack below it) and what follows it.
      const at = lines.findIndex((l) => /\b(Error|horizon):/.test(l));
      const excerpt = (at >= 0 ? lines.slice(at, at + 3) : lines.slice(-3)).join('\n  ');
      say(`every rollout worker exited ${MAX_WORKER_RESTARTS + 1} times; stopping the job. From ${logFile}:\n  ${excerpt}`);
      void jobs.cancel(run.jobId, `every rollout worker crashed (see ${logFile})`).catch(() => {});
    };
    for (let i = 0; i < workerCount; i++)
      children.push(spawnWorker(i, url, run, config.workers.concurrency, () => stopping, children, say, onGaveUp));
    if (run.dashboard) {
      dashboard = await startDashboard({ redisUrl: url, prefix: run.prefix, port: 0 });
      say(`dashboard: ${dashboard.url}jobs/${encodeURIComponent(run.jobId)}`);
    }
    const target = config.algorithm === 'muzero' ? 'the malloc game' : (config.env.name ?? config.env.module);
    say(
      `job ${run.jobId}: ${config.algorithm} on ${target}, ${config.train.iterations} iterations, ${workerCount} workers; run dir ${run.runDir}`,
    );
    service = new LearnerService({
      redis,
      redisUrl: url,
      prefix: run.prefix,
      runsDir: path.dirname(run.runDir),
      runDirFor: () => run.runDir,
      log: say,
      onIteration: (_id, m) => {
        const update = {
          iteration: m.step,
          total: config.train.iterations,
          reward: m['charts/reward_mean'],
          success: m['charts/success_rate'],
          episodesPerSec: m['rollout/episodes_per_s'],
          elapsedSec: m['time/elapsed_s'],
        };
        if (run.progress) bar.update(update);
      },
    });
    const learner = service;
    const outcome = await learner.runJob(run.jobId);
    service = undefined;
    bar.done();
    await learner.close();
    const records = readMetricsFile(run.runDir).filter((m) => m.step >= 1 && m['charts/reward_mean'] !== undefined);
    if (records.length) console.error(summaryLine(records));
    console.error(`${outcome}: run directory ${run.runDir} (report.html, metrics.jsonl, checkpoints/)`);
    return outcome === 'completed' ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!stopping) await shutdown();
  }
}

/** Start one local worker process; a worker that dies while the run goes on is restarted (up to 3 times). */
/** Restarts of a crashing local worker before it is given up. */
const MAX_WORKER_RESTARTS = 3;

function spawnWorker(
  index: number,
  url: string,
  run: LocalRun,
  concurrency: number,
  isStopping: () => boolean,
  children: ChildProcess[],
  say: (line: string) => void,
  onGaveUp: (index: number, logFile: string) => void,
  restarts = 0,
): ChildProcess {
  const logFile = path.join(run.runDir, `worker-${index}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [bin(), 'worker', '--redis', url, '--prefix', run.prefix, '--concurrency', String(concurrency)], {
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  child.once('exit', (code, signal) => {
    if (isStopping()) return;
    say(`worker ${index} exited (${signal ?? `code ${code}`}); see ${logFile}`);
    if (restarts < MAX_WORKER_RESTARTS) {
      const replacement = spawnWorker(index, url, run, concurrency, isStopping, children, say, onGaveUp, restarts + 1);
      children[children.indexOf(child)] = replacement;
    } else onGaveUp(index, logFile);
  });
  return child;
}

/** SIGTERM a child, SIGKILL it if it has not exited after `graceMs`. */
async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
