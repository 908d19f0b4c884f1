/**
 * Self-play through the queue, for the MuZero learner: keep `muzero.selfPlay.jobsInFlight` self-play jobs
 * queued or running (each names the newest weights version when it is queued), and hand over finished
 * jobs as they arrive — without waiting for any particular one, so the learner keeps training meanwhile.
 * Workers write each job's result once (HSETNX) and push its index onto an arrivals list; a job is
 * ingested at most once (a redone job that lands again is counted as a duplicate and dropped).
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { describeError } from '../../core/errors.js';
import type { ResolvedConfig } from '../../configs/resolve.js';
import {
  PROTOCOL_VERSION,
  RETENTION,
  SelfPlayResultSchema,
  jobKeys,
  parsePayload,
  selfPlayJobId,
  type ProgramRef,
  type SelfPlayJobPayload,
} from '../../rollout/protocol.js';
import type { MallocEpisode } from '../../rollout/selfplay.js';

/** Where self-play jobs go and whose they are. */
export interface SelfPlayCollectorOptions {
  readonly queue: Queue;
  readonly redis: Redis;
  readonly prefix: string;
  readonly jobId: string;
  readonly attempt: number;
  readonly config: ResolvedConfig;
  readonly log?: (line: string) => void;
}

/** A finished self-play job as the learner ingests it. */
export interface ArrivedSelfPlay {
  readonly jobIndex: number;
  /** In the order of the job's programs; each carries the policy version that played it. */
  readonly episodes: readonly MallocEpisode[];
  readonly workerId: string;
  readonly wallMs: number;
}

/** What one poll found. */
export interface SelfPlayPoll {
  readonly arrived: readonly ArrivedSelfPlay[];
  /** Jobs that failed after their retries, timed out (`muzero.selfPlay.jobTimeoutSec`) or sent a malformed result. */
  readonly failed: ReadonlyArray<{ readonly jobIndex: number; readonly reason: string }>;
  /** Results of jobs ingested before (a redone job that landed twice); dropped. */
  readonly duplicates: number;
}

interface InFlight {
  readonly policyVersion: number;
  readonly dispatchedAt: number;
}

/** Dispatches self-play jobs and collects their results for one attempt of one training job. */
export class SelfPlayCollector {
  private readonly inFlight = new Map<number, InFlight>();
  private readonly ingested = new Set<number>();
  private readonly plainConfig: Record<string, unknown>;
  private nextIndex = 0;
  private lastStateCheck = 0;
  private waiter?: Redis;

  constructor(private readonly options: SelfPlayCollectorOptions) {
    const { derived: _derived, ...rest } = options.config;
    this.plainConfig = JSON.parse(JSON.stringify(rest)) as Record<string, unknown>;
  }

  /** Jobs queued or running. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Jobs dispatched so far in this attempt. */
  get dispatched(): number {
    return this.nextIndex;
  }

  /** The oldest weights version a job in flight may still fetch (the weight store must keep it); undefined when none. */
  oldestVersionInFlight(): number | undefined {
    let oldest: number | undefined;
    for (const job of this.inFlight.values()) if (oldest === undefined || job.policyVersion < oldest) oldest = job.policyVersion;
    return oldest;
  }

  /**
   * Queue new jobs until `jobsInFlight` are in flight, all with `policyVersion`; `pick(n)` chooses each
   * job's n programs. Returns the number queued.
   */
  async topUp(policyVersion: number, pick: (n: number) => ProgramRef[]): Promise<number> {
    const { config, jobId, attempt } = this.options;
    const { gamesPerJob, jobsInFlight } = config.muzero.selfPlay;
    const jobs = [];
    while (this.inFlight.size < jobsInFlight) {
      const jobIndex = this.nextIndex++;
      const data: SelfPlayJobPayload = {
        v: PROTOCOL_VERSION,
        kind: 'selfplay',
        jobId,
        attempt,
        jobIndex,
        policyVersion,
        programs: pick(gamesPerJob),
        config: this.plainConfig,
        configDir: config.derived.configDir,
      };
      this.inFlight.set(jobIndex, { policyVersion, dispatchedAt: Date.now() });
      jobs.push({
        name: 'selfplay',
        data,
        opts: {
          jobId: selfPlayJobId(jobId, attempt, jobIndex),
          attempts: 3,
          backoff: { type: 'exponential', delay: 1000 },
          removeOnComplete: RETENTION.completedGroups,
          removeOnFail: RETENTION.failedGroups,
        },
      });
    }
    if (jobs.length > 0) await this.options.queue.addBulk(jobs);
    return jobs.length;
  }

  /**
   * Take every finished job (waiting up to `waitMs` for the first one when none has arrived yet; 0 = do
   * not wait), and the jobs that failed or timed out since the last look (checked at most once a second).
   */
  async poll(waitMs: number): Promise<SelfPlayPoll> {
    const { redis, prefix, jobId, attempt } = this.options;
    const keys = jobKeys(prefix, jobId);
    const arrivalsKey = keys.selfPlayArrivals(attempt);
    const resultsKey = keys.selfPlayResults(attempt);
    const indices: string[] = (await redis.lpop(arrivalsKey, 10_000)) ?? [];
    if (indices.length === 0 && waitMs > 0) {
      // A blocking pop holds its connection: it gets one of its own.
      this.waiter ??= redis.duplicate();
      const popped = await this.waiter.blpop(arrivalsKey, Math.max(0.01, waitMs / 1000));
      if (popped) indices.push(popped[1], ...((await redis.lpop(arrivalsKey, 10_000)) ?? []));
    }
    const arrived: ArrivedSelfPlay[] = [];
    const failed: Array<{ jobIndex: number; reason: string }> = [];
    let duplicates = 0;
    for (const field of indices) {
      const jobIndex = Number(field);
      const json = await redis.hget(resultsKey, field);
      if (json !== null) await redis.hdel(resultsKey, field);
      if (this.ingested.has(jobIndex)) {
        duplicates += 1;
        continue;
      }
      if (json === null) continue;
      this.ingested.add(jobIndex);
      this.inFlight.delete(jobIndex);
      try {
        const result = parsePayload(SelfPlayResultSchema, JSON.parse(json), `result of self-play job ${jobIndex}`);
        arrived.push({ jobIndex, episodes: result.episodes, workerId: result.workerId, wallMs: result.wallMs });
      } catch (err) {
        failed.push({ jobIndex, reason: describeError(err) });
      }
    }
    if (Date.now() - this.lastStateCheck >= 1000) {
      this.lastStateCheck = Date.now();
      failed.push(...(await this.findFailed()));
    }
    for (const f of failed) this.options.log?.(`self-play job ${f.jobIndex} left out: ${f.reason}`);
    return { arrived, failed, duplicates };
  }

  /** Jobs in flight that BullMQ failed (after their retries) or that ran past the timeout; they leave the in-flight set. */
  private async findFailed(): Promise<Array<{ jobIndex: number; reason: string }>> {
    const { queue, jobId, attempt, config } = this.options;
    const timeoutMs = config.muzero.selfPlay.jobTimeoutSec * 1000;
    const failed: Array<{ jobIndex: number; reason: string }> = [];
    for (const [jobIndex, job] of [...this.inFlight.entries()]) {
      const id = selfPlayJobId(jobId, attempt, jobIndex);
      if (Date.now() - job.dispatchedAt > timeoutMs) {
        this.inFlight.delete(jobIndex);
        await queue.remove(id).catch(() => undefined);
        failed.push({ jobIndex, reason: `not finished within muzero.selfPlay.jobTimeoutSec = ${config.muzero.selfPlay.jobTimeoutSec}` });
        continue;
      }
      const queued = await queue.getJob(id);
      if (queued && (await queued.getState()) === 'failed') {
        this.inFlight.delete(jobIndex);
        failed.push({ jobIndex, reason: queued.failedReason || 'failed' });
      }
    }
    return failed;
  }

  /** Withdraw the jobs still waiting (a running one finishes and is dropped), delete this attempt's keys. */
  async close(): Promise<void> {
    const { queue, redis, prefix, jobId, attempt } = this.options;
    for (const jobIndex of this.inFlight.keys()) await queue.remove(selfPlayJobId(jobId, attempt, jobIndex)).catch(() => undefined);
    this.inFlight.clear();
    const keys = jobKeys(prefix, jobId);
    await redis.del(keys.selfPlayResults(attempt), keys.selfPlayArrivals(attempt));
    this.waiter?.disconnect();
  }
}
