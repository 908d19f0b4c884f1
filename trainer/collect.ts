/**
 * Collecting one iteration's rollouts through the queue (LOOP steps 1–4): dispatch one group job per task,
 * watch per-group progress, apply the straggler early stop, gather results written by the workers.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { TrainingError, describeError } from '../core/errors.js';
import type { ResolvedConfig } from '../configs/resolve.js';
import type { TaskRef } from '../envs/types.js';
import {
  GroupResultSchema,
  PROTOCOL_VERSION,
  RETENTION,
  groupJobId,
  jobKeys,
  parsePayload,
  type GroupJobPayload,
} from '../rollout/protocol.js';
import type { Trajectory } from '../rollout/trajectory.js';

/** Where and what to collect. */
export interface IterationRequest {
  readonly queue: Queue;
  readonly redis: Redis;
  readonly prefix: string;
  readonly jobId: string;
  readonly attempt: number;
  readonly iteration: number;
  readonly policyVersion: number;
  readonly tasks: readonly TaskRef[];
  readonly config: ResolvedConfig;
  /** Checked while waiting; true aborts the collection (user cancel). */
  readonly isCancelled?: () => Promise<boolean>;
  readonly log?: (line: string) => void;
  readonly pollMs?: number;
}

/** One group as it reached the learner. */
export interface CollectedGroup {
  readonly groupIndex: number;
  readonly task: TaskRef;
  readonly trajectories: readonly Trajectory[];
  /** Members cancelled by the straggler stop: dropped, never scored. */
  readonly cancelled: readonly number[];
  readonly workerId: string;
}

/** Everything one iteration's collection produced. */
export interface CollectedIteration {
  readonly groups: readonly CollectedGroup[];
  readonly failedGroups: ReadonlyArray<{ groupIndex: number; reason: string }>;
  readonly stragglerStopped: boolean;
  /** Rollouts whose id was seen before in this iteration (ingestion is idempotent; always 0 unless a group landed twice). */
  readonly duplicateRollouts: number;
  readonly generatedTokens: number;
  readonly wallMs: number;
}

/** Enqueue the groups of one iteration. Deterministic job ids make a re-dispatch a no-op. */
export async function dispatchGroups(req: IterationRequest): Promise<void> {
  const config = stripDerived(req.config);
  await req.queue.addBulk(
    req.tasks.map((task, groupIndex) => {
      const data: GroupJobPayload = {
        v: PROTOCOL_VERSION,
        jobId: req.jobId,
        attempt: req.attempt,
        iteration: req.iteration,
        groupIndex,
        policyVersion: req.policyVersion,
        task,
        config,
        configDir: req.config.derived.configDir,
      };
      return {
        name: 'group',
        data,
        opts: {
          jobId: groupJobId(req.jobId, req.attempt, req.iteration, groupIndex),
          attempts: 3,
          backoff: { type: 'exponential', delay: 1000 },
          removeOnComplete: RETENTION.completedGroups,
          removeOnFail: RETENTION.failedGroups,
        },
      };
    }),
  );
}

/**
 * Wait for the iteration's groups. Straggler early stop (LOOP step 3): once every task has at least
 * `derived.stragglerMinPerTask` finished rollouts and `stragglerStop.totalFraction` of all rollouts are
 * finished, the learner sets the iteration's stop key and workers cancel the rest.
 */
export async function collectGroups(req: IterationRequest): Promise<CollectedIteration> {
  // Waiting is a BLPOP on the arrivals list (woken the moment a worker writes a result), on a connection
  // of its own because a blocking command holds the connection.
  const waiter = req.redis.duplicate();
  try {
    return await collectWith(req, waiter);
  } finally {
    waiter.disconnect();
  }
}

async function collectWith(req: IterationRequest, waiter: Redis): Promise<CollectedIteration> {
  const started = Date.now();
  const keys = jobKeys(req.prefix, req.jobId);
  const resultsKey = keys.results(req.attempt, req.iteration);
  const progressKey = keys.progress(req.attempt, req.iteration);
  const stopKey = keys.stop(req.attempt, req.iteration);
  const { rollout, derived } = req.config;
  const T = req.tasks.length;
  const K = rollout.groupSize;
  const arrivalsKey = keys.arrivals(req.attempt, req.iteration);
  // `pollMs` bounds each wait so progress, failures and cancellation are checked while nothing arrives.
  const pollMs = req.pollMs ?? 150;
  const deadline = started + rollout.groupTimeoutSec * 1000;
  const groups = new Map<number, CollectedGroup>();
  const failed = new Map<number, string>();
  const seen = new Set<string>();
  let duplicateRollouts = 0;
  let generatedTokens = 0;
  let stragglerStopped = false;
  let lastStateCheck = 0;

  while (groups.size + failed.size < T) {
    if (req.isCancelled && (await req.isCancelled())) {
      // The cancel key holds the reason (`horizon cancel`: the user; `horizon train`: crashed workers).
      const reason = await req.redis.get(`${req.prefix}:job:${req.jobId}:cancel`);
      throw new TrainingError(reason && reason !== '1' ? `cancelled: ${reason}` : 'cancelled by the user');
    }
    const raw = await req.redis.hgetall(resultsKey);
    for (const [field, json] of Object.entries(raw)) {
      const groupIndex = Number(field);
      if (groups.has(groupIndex) || failed.has(groupIndex)) continue;
      try {
        const result = parsePayload(GroupResultSchema, JSON.parse(json), `result of group ${groupIndex}`);
        const fresh = result.trajectories.filter((t) => {
          if (seen.has(t.rolloutId)) {
            duplicateRollouts += 1;
            return false;
          }
          seen.add(t.rolloutId);
          return true;
        });
        generatedTokens += result.generatedTokens;
        groups.set(groupIndex, {
          groupIndex,
          task: req.tasks[groupIndex],
          trajectories: fresh as Trajectory[],
          cancelled: result.cancelled,
          workerId: result.workerId,
        });
      } catch (err) {
        failed.set(groupIndex, describeError(err));
      }
    }
    if (rollout.stragglerStop.enabled && !stragglerStopped) {
      const finished = finishedPerGroup(await req.redis.hgetall(progressKey), T, groups, K);
      const total = finished.reduce((a, b) => a + b, 0);
      if (
        finished.every((f) => f >= derived.stragglerMinPerTask) &&
        total >= rollout.stragglerStop.totalFraction * T * K &&
        total < T * K
      ) {
        await req.redis.set(stopKey, '1', 'EX', 24 * 3600);
        stragglerStopped = true;
      }
    }
    if (Date.now() - lastStateCheck > 1000) {
      lastStateCheck = Date.now();
      for (let g = 0; g < T; g++) {
        if (groups.has(g) || failed.has(g)) continue;
        const job = await req.queue.getJob(groupJobId(req.jobId, req.attempt, req.iteration, g));
        if (job && (await job.getState()) === 'failed') failed.set(g, job.failedReason || 'failed');
      }
    }
    if (Date.now() > deadline) {
      for (let g = 0; g < T; g++)
        if (!groups.has(g) && !failed.has(g)) failed.set(g, `not finished within rollout.groupTimeoutSec = ${rollout.groupTimeoutSec}`);
      break;
    }
    if (groups.size + failed.size < T) await waiter.blpop(arrivalsKey, pollMs / 1000);
  }
  for (const [g, reason] of failed) req.log?.(`iteration ${req.iteration}: group ${g} failed and is left out: ${reason}`);
  await req.redis.del(resultsKey, progressKey, arrivalsKey);
  return {
    groups: [...groups.values()].sort((a, b) => a.groupIndex - b.groupIndex),
    failedGroups: [...failed.entries()].map(([groupIndex, reason]) => ({ groupIndex, reason })),
    stragglerStopped,
    duplicateRollouts,
    generatedTokens,
    wallMs: Date.now() - started,
  };
}

/**
 * Finished rollouts per group. Progress fields are `${group}|${run}` (one per processing run of the group),
 * so a worker killed mid-group cannot inflate the count: the maximum over runs is used.
 */
function finishedPerGroup(progress: Record<string, string>, T: number, done: ReadonlyMap<number, CollectedGroup>, K: number): number[] {
  const finished = new Array<number>(T).fill(0);
  for (const [field, value] of Object.entries(progress)) {
    const g = Number(field.split('|')[0]);
    if (g >= 0 && g < T) finished[g] = Math.max(finished[g], Number(value));
  }
  for (const [g, group] of done) finished[g] = Math.max(finished[g], Math.min(K, group.trajectories.length + group.cancelled.length));
  return finished;
}

function stripDerived(config: ResolvedConfig): Record<string, unknown> {
  const { derived: _derived, ...rest } = config;
  return JSON.parse(JSON.stringify(rest)) as Record<string, unknown>;
}
