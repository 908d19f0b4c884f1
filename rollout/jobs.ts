/**
 * Training-job control over Redis: submit, status, logs, cancel, resume. The CLI and the learner both use
 * this; the layout of the keys is in protocol.ts.
 */
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { HorizonError } from '../core/errors.js';
import type { ResolvedConfig } from '../configs/resolve.js';
import { queueConnection } from './queue-connection.js';
import {
  DEFAULT_PREFIX,
  JOB_STATES,
  PROTOCOL_VERSION,
  QUEUES,
  RETENTION,
  jobIndexKey,
  jobKeys,
  TrajectorySampleSchema,
  summariseSample,
  type JobState,
  type TrajectorySampleSummary,
  type TrainingJobPayload,
  type TrajectorySample,
} from './protocol.js';

/** A job id that does not exist in this Redis. */
export class JobNotFoundError extends HorizonError {
  constructor(jobId: string) {
    super('E_JOB_NOT_FOUND', `no training job "${jobId}" in this Redis (list them with \`horizon status\`)`, { context: { jobId } });
  }
}

/** The status hash of a job, typed. */
export interface JobStatus {
  readonly jobId: string;
  readonly state: JobState | 'cancelling';
  readonly name: string;
  readonly algorithm: string;
  readonly env: string;
  readonly iteration: number;
  readonly iterations: number;
  readonly policyVersion: number;
  readonly attempt: number;
  readonly rewardMean?: number;
  readonly submittedAt: number;
  readonly startedAt?: number;
  readonly finishedAt?: number;
  readonly updatedAt?: number;
  readonly learner?: string;
  readonly runDir?: string;
  readonly error?: string;
}

/** Make a readable, unique job id: `<name>-<yyyymmdd-hhmmss>-<4 hex>`. */
export function newJobId(name: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${name}-${stamp}-${randomBytes(2).toString('hex')}`;
}

/** Job control against one Redis. */
export class JobControl {
  readonly prefix: string;
  private jobsQueue?: Queue;

  constructor(
    private readonly redis: Redis,
    private readonly redisUrl: string,
    options: { prefix?: string } = {},
  ) {
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
  }

  /** The BullMQ queue of training jobs. */
  queue(): Queue {
    this.jobsQueue ??= new Queue(QUEUES.jobs, { connection: queueConnection(this.redisUrl), prefix: this.prefix });
    return this.jobsQueue;
  }

  async close(): Promise<void> {
    await this.jobsQueue?.close();
  }

  /** Store the config, create the status record and enqueue the job. Returns the job id. */
  async submit(config: ResolvedConfig, options: { jobId?: string; enqueue?: boolean } = {}): Promise<string> {
    const jobId = options.jobId ?? newJobId(config.name);
    const keys = jobKeys(this.prefix, jobId);
    if (await this.redis.exists(keys.status))
      throw new HorizonError('E_JOB_EXISTS', `job ${jobId} already exists; use \`horizon resume ${jobId}\``);
    const now = Date.now();
    const { derived, ...plain } = config;
    await this.redis
      .multi()
      .hset(keys.status, {
        state: 'queued',
        name: config.name,
        algorithm: config.algorithm,
        env: config.algorithm === 'muzero' ? 'malloc' : (config.env.name ?? config.env.module ?? ''),
        iteration: 0,
        iterations: config.train.iterations,
        policyVersion: 0,
        attempt: 0,
        submittedAt: now,
        configDir: derived.configDir,
      })
      .set(keys.config, JSON.stringify(plain))
      .zadd(jobIndexKey(this.prefix), now, jobId)
      .exec();
    // `horizon train` runs its own learner on the job and does not put it on the queue.
    if (options.enqueue ?? true) await this.enqueue(jobId, false);
    return jobId;
  }

  private async enqueue(jobId: string, resume: boolean): Promise<void> {
    const keys = jobKeys(this.prefix, jobId);
    const config = JSON.parse((await this.redis.get(keys.config)) ?? '{}') as Record<string, unknown>;
    const payload: TrainingJobPayload = { v: PROTOCOL_VERSION, jobId, config, resume, submittedAt: Date.now() };
    const n = await this.redis.hincrby(keys.status, 'enqueued', 1);
    await this.queue().add('train', payload, {
      jobId: `train.${jobId}.${n}`,
      removeOnComplete: RETENTION.completedGroups,
      removeOnFail: RETENTION.failedGroups,
    });
  }

  /** The job's status, or JobNotFoundError. */
  async status(jobId: string): Promise<JobStatus> {
    const raw = await this.redis.hgetall(jobKeys(this.prefix, jobId).status);
    if (!raw.state) throw new JobNotFoundError(jobId);
    return parseStatus(jobId, raw);
  }

  /** All jobs, newest first. */
  async list(limit = 50): Promise<JobStatus[]> {
    const ids = await this.redis.zrevrange(jobIndexKey(this.prefix), 0, limit - 1);
    const out: JobStatus[] = [];
    for (const id of ids) {
      const raw = await this.redis.hgetall(jobKeys(this.prefix, id).status);
      if (raw.state) out.push(parseStatus(id, raw));
    }
    return out;
  }

  /** The stored config of a job (without derived values). */
  async config(jobId: string): Promise<Record<string, unknown>> {
    const text = await this.redis.get(jobKeys(this.prefix, jobId).config);
    if (text === null) throw new JobNotFoundError(jobId);
    return JSON.parse(text) as Record<string, unknown>;
  }

  /** Update fields of the status hash (and `updatedAt`). */
  async update(jobId: string, fields: Record<string, string | number>): Promise<void> {
    await this.redis.hset(jobKeys(this.prefix, jobId).status, { ...fields, updatedAt: Date.now() });
  }

  /** Append a log line (capped list). */
  async log(jobId: string, line: string): Promise<void> {
    const key = jobKeys(this.prefix, jobId).logs;
    await this.redis.multi().rpush(key, `${new Date().toISOString()} ${line}`).ltrim(key, -RETENTION.logs, -1).exec();
  }

  /** Log lines from index `from` on. */
  async logs(jobId: string, from = 0): Promise<string[]> {
    await this.status(jobId);
    return this.redis.lrange(jobKeys(this.prefix, jobId).logs, from, -1);
  }

  /** Append a metrics record (capped list). */
  async pushMetrics(jobId: string, record: Record<string, unknown>): Promise<void> {
    const key = jobKeys(this.prefix, jobId).metrics;
    await this.redis.multi().rpush(key, JSON.stringify(record)).ltrim(key, -RETENTION.metrics, -1).exec();
  }

  /** Replace the stored metrics (a resumed job drops the iterations it will run again). */
  async replaceMetrics(jobId: string, records: readonly Record<string, unknown>[]): Promise<void> {
    const key = jobKeys(this.prefix, jobId).metrics;
    const tx = this.redis.multi().del(key);
    if (records.length) tx.rpush(key, ...records.map((r) => JSON.stringify(r)));
    await tx.exec();
  }

  /** Metrics records from index `from` on. */
  async metrics(jobId: string, from = 0): Promise<Record<string, unknown>[]> {
    const rows = await this.redis.lrange(jobKeys(this.prefix, jobId).metrics, from, -1);
    return rows.map((r) => JSON.parse(r) as Record<string, unknown>);
  }

  /** Record one iteration's sampled groups (capped list, with its summary in a parallel list). */
  async pushSample(jobId: string, sample: TrajectorySample): Promise<void> {
    const { samples, samplesIndex } = jobKeys(this.prefix, jobId);
    await this.redis
      .multi()
      .rpush(samples, JSON.stringify(sample))
      .ltrim(samples, -RETENTION.samples, -1)
      .rpush(samplesIndex, JSON.stringify(summariseSample(sample)))
      .ltrim(samplesIndex, -RETENTION.samples, -1)
      .exec();
  }

  /** Summaries of the recorded iterations, oldest first (reads only the small index list). */
  async sampleIndex(jobId: string): Promise<TrajectorySampleSummary[]> {
    const { samples, samplesIndex } = jobKeys(this.prefix, jobId);
    const [full, index] = await Promise.all([this.redis.llen(samples), this.redis.llen(samplesIndex)]);
    if (full !== index) return (await this.samples(jobId)).map(summariseSample); // recorded by an older build
    return (await this.redis.lrange(samplesIndex, 0, -1)).map((r) => JSON.parse(r) as TrajectorySampleSummary);
  }

  /**
   * The newest record of iteration `step` (a resumed job records the iterations it redoes again), or
   * undefined. Reads the index and one element, whatever the number of recorded iterations.
   */
  async sampleAt(jobId: string, step: number): Promise<TrajectorySample | undefined> {
    const { samples, samplesIndex } = jobKeys(this.prefix, jobId);
    const index = await this.redis.lrange(samplesIndex, 0, -1);
    const full = await this.redis.llen(samples);
    if (full !== index.length) return [...(await this.samples(jobId))].reverse().find((s) => s.step === step);
    for (let i = index.length - 1; i >= 0; i--) {
      if ((JSON.parse(index[i]) as TrajectorySampleSummary).step !== step) continue;
      const raw = await this.redis.lindex(samples, i);
      if (raw === null) return undefined;
      const parsed = TrajectorySampleSchema.safeParse(JSON.parse(raw));
      return parsed.success ? parsed.data : undefined;
    }
    return undefined;
  }

  /** Recorded samples, oldest first; records that do not parse are skipped. */
  async samples(jobId: string): Promise<TrajectorySample[]> {
    const rows = await this.redis.lrange(jobKeys(this.prefix, jobId).samples, 0, -1);
    return rows.flatMap((r) => {
      const parsed = TrajectorySampleSchema.safeParse(JSON.parse(r));
      return parsed.success ? [parsed.data] : [];
    });
  }

  /**
   * Ask a job to stop. A queued job is cancelled at once; a running one at the learner's next check.
   * `reason` (default: the user asked) is what the learner reports.
   */
  async cancel(jobId: string, reason?: string): Promise<JobStatus['state']> {
    const status = await this.status(jobId);
    if (status.state === 'completed' || status.state === 'cancelled' || status.state === 'failed') return status.state;
    const keys = jobKeys(this.prefix, jobId);
    await this.redis.set(keys.cancel, reason ?? '1');
    if (status.state === 'queued') {
      await this.update(jobId, { state: 'cancelled', finishedAt: Date.now() });
      return 'cancelled';
    }
    await this.update(jobId, { state: 'cancelling' });
    return 'cancelling';
  }

  /** Re-enqueue a failed, cancelled or interrupted job; the learner continues from its latest checkpoint. */
  async resume(jobId: string): Promise<void> {
    const status = await this.status(jobId);
    if (status.state === 'completed')
      throw new HorizonError('E_JOB_DONE', `job ${jobId} already completed all ${status.iterations} iterations`);
    if ((status.state === 'running' || status.state === 'cancelling') && (await this.learnerAlive(jobId))) {
      throw new HorizonError('E_JOB_RUNNING', `job ${jobId} is running on ${status.learner ?? 'a learner'}; cancel it first or wait`);
    }
    await this.redis.del(jobKeys(this.prefix, jobId).cancel);
    await this.update(jobId, { state: 'queued' });
    await this.enqueue(jobId, true);
  }

  /** Whether a learner holds the job's lease right now. */
  async learnerAlive(jobId: string): Promise<boolean> {
    const holder = await this.redis.get(learnerLeaseKey(this.prefix, jobId));
    if (holder === null) return false;
    return !holderIsDeadLocalProcess(holder);
  }
}

/** Key of the lease a learner holds while it runs a job (value `host:pid`, expires unless renewed). */
export function learnerLeaseKey(prefix: string, jobId: string): string {
  return `${jobKeys(prefix, jobId).status}:learner`;
}

/** A lease held by a process on this host that no longer exists can be taken over at once. */
export function holderIsDeadLocalProcess(holder: string): boolean {
  const sep = holder.lastIndexOf(':');
  const host = holder.slice(0, sep);
  const pid = Number(holder.slice(sep + 1));
  if (host !== os.hostname() || !Number.isInteger(pid)) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function parseStatus(jobId: string, raw: Record<string, string>): JobStatus {
  const num = (k: string) => (raw[k] === undefined || raw[k] === '' ? undefined : Number(raw[k]));
  const state =
    (JOB_STATES as readonly string[]).includes(raw.state) || raw.state === 'cancelling' ? (raw.state as JobStatus['state']) : 'failed';
  return {
    jobId,
    state,
    name: raw.name ?? '',
    algorithm: raw.algorithm ?? '',
    env: raw.env ?? '',
    iteration: num('iteration') ?? 0,
    iterations: num('iterations') ?? 0,
    policyVersion: num('policyVersion') ?? 0,
    attempt: num('attempt') ?? 0,
    rewardMean: num('rewardMean'),
    submittedAt: num('submittedAt') ?? 0,
    startedAt: num('startedAt'),
    finishedAt: num('finishedAt'),
    updatedAt: num('updatedAt'),
    learner: raw.learner,
    runDir: raw.runDir,
    error: raw.error,
  };
}
