/**
 * The learner process: takes training jobs from the `jobs` queue (or is handed one by `horizon train`),
 * holds a lease on the job while it runs so a second learner cannot run it at the same time, and records
 * the outcome in the job's status.
 */
import os from 'node:os';
import path from 'node:path';
import { Queue, Worker, UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { HorizonError, describeError } from '../core/errors.js';
import { resolveConfig } from '../configs/resolve.js';
import { queueConnection } from '../rollout/queue-connection.js';
import { JobControl, holderIsDeadLocalProcess, learnerLeaseKey } from '../rollout/jobs.js';
import { QUEUES, TrainingJobPayloadSchema, parsePayload, jobKeys } from '../rollout/protocol.js';
import { runTrainingJob, type IterationMetrics } from './learner.js';
import { runMuZeroTrainingJob } from './muzero/learner.js';

/** Options of a learner. */
export interface LearnerServiceOptions {
  readonly redis: Redis;
  readonly redisUrl: string;
  readonly prefix?: string;
  /** Run directories are `${runsDir}/${jobId}` unless `runDirFor` says otherwise. */
  readonly runsDir: string;
  readonly runDirFor?: (jobId: string) => string;
  readonly log?: (line: string) => void;
  readonly onIteration?: (jobId: string, metrics: IterationMetrics) => void;
  /** How long a lease lives without renewal; a learner on another host that dies frees the job after this. */
  readonly leaseMs?: number;
}

/** Final state of one job run by this learner. */
export type JobOutcome = 'completed' | 'cancelled' | 'failed' | 'skipped';

/** Runs training jobs; one at a time per process (a learner owns the GPU). */
export class LearnerService {
  private readonly jobs: JobControl;
  private readonly rolloutQueue: Queue;
  private worker?: Worker;
  private readonly holder = `${os.hostname()}:${process.pid}`;
  /** Lease renewal timers of running jobs (cleared by `close`). */
  private readonly timers = new Set<ReturnType<typeof setInterval>>();
  private closed = false;

  constructor(private readonly options: LearnerServiceOptions) {
    this.jobs = new JobControl(options.redis, options.redisUrl, { prefix: options.prefix });
    this.rolloutQueue = new Queue(QUEUES.rollouts, { connection: queueConnection(options.redisUrl), prefix: this.jobs.prefix });
  }

  private log(line: string): void {
    (this.options.log ?? ((l: string) => console.error(l)))(line);
  }

  /** Serve the `jobs` queue until `close()`. */
  async start(): Promise<void> {
    this.worker = new Worker(
      QUEUES.jobs,
      async (job: Job) => {
        let jobId: string;
        try {
          jobId = parsePayload(TrainingJobPayloadSchema, job.data, `training job ${job.id}`).jobId;
        } catch (err) {
          throw new UnrecoverableError(describeError(err));
        }
        const outcome = await this.runJob(jobId);
        return { outcome };
      },
      {
        connection: queueConnection(this.options.redisUrl),
        prefix: this.jobs.prefix,
        concurrency: 1,
        // Training steps can hold the event loop for seconds; a long lock keeps the job from being
        // declared stalled while the learner is alive. Our own lease (below) guards against doubles.
        lockDuration: 120_000,
        maxStalledCount: 1000,
      },
    );
    this.worker.on('error', (err) => this.log(`learner queue error: ${describeError(err)}`));
    await this.worker.waitUntilReady();
    this.log(`learner ${this.holder} waiting for training jobs`);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers.clear();
    await this.worker?.close();
    await this.rolloutQueue.close();
    await this.jobs.close();
  }

  /** Run one job to its end (completed, cancelled or failed). Never throws for training failures. */
  async runJob(jobId: string): Promise<JobOutcome> {
    const status = await this.jobs.status(jobId);
    if (status.state === 'completed' || status.state === 'cancelled') return 'skipped';
    if (!(await this.acquireLease(jobId))) return 'skipped';
    // A failed renewal (Redis briefly away) is logged, never an unhandled rejection that ends the process;
    // the lease only lapses if renewals keep failing for the whole lease time.
    const renew = setInterval(
      () => {
        this.renewLease(jobId).catch((err) => {
          if (!this.closed) this.log(`[${jobId}] lease renewal failed: ${describeError(err)}`);
        });
      },
      Math.floor(this.leaseMs() / 3),
    );
    this.timers.add(renew);
    const runDir = this.options.runDirFor?.(jobId) ?? path.join(this.options.runsDir, jobId);
    const log = (line: string) => {
      this.log(`[${jobId}] ${line}`);
      void this.jobs.log(jobId, line).catch(() => undefined);
    };
    try {
      const config = resolveConfig(await this.jobs.config(jobId), {
        configDir: (await this.options.redis.hget(jobKeys(this.jobs.prefix, jobId).status, 'configDir')) ?? undefined,
      });
      const attempt = await this.options.redis.hincrby(jobKeys(this.jobs.prefix, jobId).status, 'attempt', 1);
      await this.jobs.update(jobId, {
        state: 'running',
        startedAt: Date.now(),
        learner: this.holder,
        runDir: path.resolve(runDir),
        error: '',
      });
      log(`learner ${this.holder} starts attempt ${attempt} in ${path.resolve(runDir)}`);
      // algorithm muzero: self-play jobs and a replay buffer instead of rollout groups (trainer/muzero/learner.ts).
      const run = config.algorithm === 'muzero' ? runMuZeroTrainingJob : runTrainingJob;
      const outcome = await run({
        redis: this.options.redis,
        jobs: this.jobs,
        rolloutQueue: this.rolloutQueue,
        jobId,
        config,
        runDir,
        attempt,
        log,
        onIteration: (m) => this.options.onIteration?.(jobId, m),
        heartbeat: () => (this.closed ? Promise.resolve() : this.renewLease(jobId)),
      });
      await this.jobs.update(jobId, { state: outcome, finishedAt: Date.now() });
      log(`job ${outcome}`);
      return outcome;
    } catch (err) {
      const message = describeError(err);
      await this.jobs.update(jobId, { state: 'failed', finishedAt: Date.now(), error: message });
      log(`job failed: ${message}`);
      if (!(err instanceof HorizonError)) log((err as Error).stack ?? '');
      return 'failed';
    } finally {
      clearInterval(renew);
      this.timers.delete(renew);
      await this.releaseLease(jobId);
    }
  }

  private leaseMs(): number {
    return this.options.leaseMs ?? 60_000;
  }

  /** Take the job's lease; a lease of a dead local process is taken over, a live one is waited for (up to the lease time). */
  private async acquireLease(jobId: string): Promise<boolean> {
    const key = learnerLeaseKey(this.jobs.prefix, jobId);
    const deadline = Date.now() + this.leaseMs() + 5000;
    while (Date.now() < deadline) {
      if ((await this.options.redis.set(key, this.holder, 'PX', this.leaseMs(), 'NX')) === 'OK') return true;
      const holder = await this.options.redis.get(key);
      if (holder === this.holder) return true;
      if (holder !== null && holderIsDeadLocalProcess(holder)) {
        this.log(`[${jobId}] taking over the lease of ${holder} (process gone)`);
        await this.options.redis.del(key);
        continue;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    this.log(`[${jobId}] another learner holds this job; skipping`);
    return false;
  }

  private async renewLease(jobId: string): Promise<void> {
    const key = learnerLeaseKey(this.jobs.prefix, jobId);
    if ((await this.options.redis.get(key)) === this.holder) await this.options.redis.pexpire(key, this.leaseMs());
  }

  private async releaseLease(jobId: string): Promise<void> {
    const key = learnerLeaseKey(this.jobs.prefix, jobId);
    if ((await this.options.redis.get(key)) === this.holder) await this.options.redis.del(key);
  }
}
