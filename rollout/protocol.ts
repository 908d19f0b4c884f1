/**
 * The queue protocol, owned by this one file: queue names, Redis key layout, versioned payload schemas.
 * Both ends parse with these schemas; a payload that does not parse is a ProtocolError (never retried).
 * Large things travel by reference: a group job names a policy version, the worker fetches the weights
 * from the WeightStore.
 */
import path from 'node:path';
import { z } from 'zod';
import { ProtocolError } from '../core/errors.js';
import { WorkloadSchema, generateProgram } from '../envs/malloc/generators.js';
import { loadProgramFile } from '../envs/malloc/loaders.js';
import { compileProgram } from '../envs/malloc/program.js';
import type { CompiledProgram } from '../envs/malloc/types.js';
import { MallocEpisodeSchema } from './selfplay.js';

/** Bumped on any incompatible change of a payload below. */
export const PROTOCOL_VERSION = 1;

/** BullMQ queue names (under the BullMQ key prefix). */
export const QUEUES = {
  /** Training jobs; one learner runs one job at a time. */
  jobs: 'jobs',
  /** Rollout groups and MuZero self-play jobs (`kind: 'selfplay'`); any worker takes any of them. */
  rollouts: 'rollouts',
} as const;

/** Default prefix of every key this system writes. `--prefix` changes it (tests use one per test). */
export const DEFAULT_PREFIX = 'horizon';

/** Redis keys of one training job (besides the BullMQ queues). */
export function jobKeys(prefix: string, jobId: string) {
  const base = `${prefix}:job:${jobId}`;
  return {
    /** Hash: status, iteration, policyVersion, attempt, … (see JobStatusSchema). */
    status: base,
    /** The resolved config (JSON string). */
    config: `${base}:config`,
    /** List of metrics records (JSON), one per iteration, capped. */
    metrics: `${base}:metrics`,
    /** List of log lines, capped. */
    logs: `${base}:logs`,
    /** Set when a user asked to cancel. */
    cancel: `${base}:cancel`,
    /** Hash groupIndex → finished rollouts, for the straggler early stop of one iteration. */
    progress: (attempt: number, iteration: number) => `${base}:progress:${attempt}:${iteration}`,
    /** Set when the learner cancels the remaining rollouts of an iteration (straggler early stop). */
    stop: (attempt: number, iteration: number) => `${base}:stop:${attempt}:${iteration}`,
    /** List of sampled groups, one JSON record per iteration (see TrajectorySampleSchema), capped. */
    samples: `${base}:samples`,
    /** Parallel list of compact summaries of `samples` (step, groups, rollout counts): same length, same order. */
    samplesIndex: `${base}:samples:index`,
    /** List a worker pushes a group index onto after writing its result, so the learner wakes at once (BLPOP). */
    arrivals: (attempt: number, iteration: number) => `${base}:arrivals:${attempt}:${iteration}`,
    /** Hash groupIndex → GroupResult JSON. Written once per group (HSETNX): a redone group cannot land twice. */
    results: (attempt: number, iteration: number) => `${base}:results:${attempt}:${iteration}`,
    /**
     * MuZero: hash selfPlayJobIndex → SelfPlayResult JSON of one attempt. Written once per job (HSETNX);
     * the learner deletes a field once it has ingested it.
     */
    selfPlayResults: (attempt: number) => `${base}:selfplay:results:${attempt}`,
    /** MuZero: list a worker pushes a self-play job index onto after writing its result (the learner BLPOPs it). */
    selfPlayArrivals: (attempt: number) => `${base}:selfplay:arrivals:${attempt}`,
  };
}

/** Sorted set of all job ids by submission time. */
export const jobIndexKey = (prefix: string) => `${prefix}:jobs`;

/** Caps on what Redis keeps, so memory stays bounded on long runs. */
export const RETENTION = {
  metrics: 100_000,
  /** Iterations whose sampled trajectories are kept (the newest). */
  samples: 500,
  logs: 10_000,
  completedGroups: { age: 3600, count: 5000 },
  failedGroups: { age: 7 * 24 * 3600, count: 5000 },
} as const;

/** The BullMQ job id of a group: deterministic, so a re-dispatch of the same group is a no-op. */
export function groupJobId(jobId: string, attempt: number, iteration: number, groupIndex: number): string {
  return `${jobId}.a${attempt}.i${iteration}.g${groupIndex}`;
}

/** The BullMQ job id of a self-play job: deterministic per (job, attempt, index), so a re-dispatch is a no-op. */
export function selfPlayJobId(jobId: string, attempt: number, jobIndex: number): string {
  return `${jobId}.a${attempt}.s${jobIndex}`;
}

/** Rollout id: unique per (job, attempt, iteration, group, member); ingestion dedups on it. */
export function rolloutId(jobId: string, attempt: number, iteration: number, groupIndex: number, k: number): string {
  return `${jobId}/${attempt}/${iteration}/${groupIndex}/${k}`;
}

export const TaskRefSchema = z.object({ split: z.string(), index: z.number().int().min(0), seed: z.number().int() }).strict();

/** A training job on the `jobs` queue. The config is the resolved config (validated again by the learner). */
export const TrainingJobPayloadSchema = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    jobId: z.string().regex(/^[A-Za-z0-9._-]+$/),
    config: z.record(z.string(), z.unknown()),
    /** Continue from the latest checkpoint in the run directory. */
    resume: z.boolean().default(false),
    submittedAt: z.number(),
  })
  .strict();
export type TrainingJobPayload = z.output<typeof TrainingJobPayloadSchema>;

/** One group: the K rollouts of one task with one policy version. */
export const GroupJobPayloadSchema = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    jobId: z.string(),
    attempt: z.number().int().min(0),
    iteration: z.number().int().min(0),
    groupIndex: z.number().int().min(0),
    policyVersion: z.number().int().min(0),
    task: TaskRefSchema,
    /** The training job's parsed config: env, model shape, rollout limits, backend, seed. */
    config: z.record(z.string(), z.unknown()),
    /** Directory plug-in module paths are relative to (must exist on the worker's machine too). */
    configDir: z.string(),
  })
  .strict();
export type GroupJobPayload = z.output<typeof GroupJobPayloadSchema>;

const SegmentSchema = z
  .object({
    tokens: z.array(z.number().int()),
    isOutput: z.array(z.union([z.literal(0), z.literal(1)])),
    logProbs: z.array(z.number()),
    turn: z.array(z.number().int()),
  })
  .strict()
  .refine((s) => s.isOutput.length === s.tokens.length && s.logProbs.length === s.tokens.length && s.turn.length === s.tokens.length, {
    message: 'segment arrays must all have the same length',
  });

export const TrajectorySchema = z
  .object({
    rolloutId: z.string(),
    groupId: z.string(),
    policyVersion: z.number().int().min(0),
    segments: z.array(SegmentSchema),
    reward: z.object({ total: z.number(), parts: z.record(z.string(), z.number()), turnRewards: z.array(z.number()).optional() }).strict(),
    finishReason: z.enum(['done', 'max_turns', 'max_context', 'cancelled']),
    turns: z.number().int().min(0),
    retries: z.number().int().min(0),
    wallMs: z.number().min(0),
  })
  .strict();

/**
 * What a worker writes for a group (into the results hash; the BullMQ return value only carries a summary,
 * so finished jobs stay small in Redis). `cancelled` lists members stopped by the straggler early stop.
 */
export const GroupResultSchema = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    groupId: z.string(),
    /** True when the worker skipped the group (job cancelled or superseded by a resume). */
    discarded: z.boolean(),
    trajectories: z.array(TrajectorySchema),
    cancelled: z.array(z.number().int()),
    workerId: z.string(),
    wallMs: z.number(),
    generatedTokens: z.number().int(),
  })
  .strict();
export type GroupResult = z.output<typeof GroupResultSchema>;

/**
 * A training program a self-play job names, by reference: generated from a workload (its seed included)
 * or read from a file (relative to the job's configDir; it must exist on the worker's machine too).
 * Learner and workers turn a ref into a program with {@link loadProgramRef}, so both play the same one.
 */
export const ProgramRefSchema = z.union([
  z.object({ id: z.string().min(1), workload: WorkloadSchema }).strict(),
  z.object({ id: z.string().min(1), file: z.string().min(1), csvCapacityFraction: z.number().gt(0).max(1) }).strict(),
]);
export type ProgramRef = z.output<typeof ProgramRefSchema>;

/** The program a ref names, compiled. Bad refs (unreadable file, invalid program) throw ConfigError. */
export function loadProgramRef(ref: ProgramRef, configDir: string): CompiledProgram {
  if ('workload' in ref) return compileProgram(generateProgram(ref.workload, ref.id));
  return loadProgramFile(path.resolve(configDir, ref.file), { capacityFraction: ref.csvCapacityFraction }).compiled;
}

/** One MuZero self-play job: play each listed program once with the weights of `policyVersion`. */
export const SelfPlayJobPayloadSchema = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    kind: z.literal('selfplay'),
    jobId: z.string(),
    attempt: z.number().int().min(0),
    /** Index of this self-play job within the attempt (0, 1, …): its BullMQ id and its seed. */
    jobIndex: z.number().int().min(0),
    policyVersion: z.number().int().min(0),
    /** [gamesPerJob] programs, one game each (a program may appear more than once). */
    programs: z.array(ProgramRefSchema).min(1),
    /** The training job's config (algorithm muzero): game options, search, backend, seed. */
    config: z.record(z.string(), z.unknown()),
    /** Directory file refs and the config's relative paths resolve against. */
    configDir: z.string(),
  })
  .strict();
export type SelfPlayJobPayload = z.output<typeof SelfPlayJobPayloadSchema>;

/** What a worker writes for a self-play job (into the self-play results hash; the BullMQ return value is a summary). */
export const SelfPlayResultSchema = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    jobIndex: z.number().int().min(0),
    /** In the order of the payload's programs. */
    episodes: z.array(MallocEpisodeSchema),
    workerId: z.string(),
    wallMs: z.number().min(0),
  })
  .strict();
export type SelfPlayResult = z.output<typeof SelfPlayResultSchema>;

/** A job of the rollouts queue, told apart by its payload. */
export type RolloutJob =
  { readonly kind: 'group'; readonly payload: GroupJobPayload } | { readonly kind: 'selfplay'; readonly payload: SelfPlayJobPayload };

/**
 * Parse a rollouts-queue payload: `kind: 'selfplay'` is a self-play job, anything else a group job.
 * Throws ProtocolError (never retried) for a malformed payload or another protocol version.
 */
export function parseRolloutJob(data: unknown, jobName: string): RolloutJob {
  if (typeof data === 'object' && data !== null && (data as { kind?: unknown }).kind === 'selfplay') {
    return { kind: 'selfplay', payload: parsePayload(SelfPlayJobPayloadSchema, data, `self-play job ${jobName}`) };
  }
  return { kind: 'group', payload: parsePayload(GroupJobPayloadSchema, data, `group job ${jobName}`) };
}

/** Job status as stored in the status hash (all values are strings in Redis). */
export const JOB_STATES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** Parse a payload or throw a ProtocolError naming what is wrong. */
export function parsePayload<S extends z.ZodType>(schema: S, data: unknown, what: string): z.output<S> {
  if (typeof data === 'object' && data !== null && 'v' in data && (data as { v: unknown }).v !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      `${what} has protocol version ${String((data as { v: unknown }).v)}, this build speaks ${PROTOCOL_VERSION}: run the same horizon version on learner and workers`,
    );
  }
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ProtocolError(`malformed ${what}: ${problems}`, { cause: parsed.error });
  }
  return parsed.data;
}

/**
 * The trajectories the learner records for inspection: for one iteration, a few whole groups with each
 * rollout's tokens, mask, sampler log-probs, reward parts and advantage (before the |A| filter).
 */
export const TrajectorySampleSchema = z
  .object({
    step: z.number().int(),
    groups: z.array(
      z
        .object({
          groupIndex: z.number().int(),
          task: TaskRefSchema,
          rollouts: z.array(
            z
              .object({
                trajectory: TrajectorySchema,
                advantage: z.number(),
                /** False when the |A| filter dropped the rollout from training. */
                trained: z.boolean(),
              })
              .strict(),
          ),
        })
        .strict(),
    ),
  })
  .strict();
export type TrajectorySample = z.output<typeof TrajectorySampleSchema>;

/** The summary of one recorded iteration, kept next to the full record so listing them stays cheap. */
export interface TrajectorySampleSummary {
  readonly step: number;
  readonly groups: ReadonlyArray<{ readonly groupIndex: number; readonly task: z.output<typeof TaskRefSchema>; readonly rollouts: number }>;
}

/** Summarise a recorded iteration. */
export function summariseSample(sample: TrajectorySample): TrajectorySampleSummary {
  return { step: sample.step, groups: sample.groups.map((g) => ({ groupIndex: g.groupIndex, task: g.task, rollouts: g.rollouts.length })) };
}

/**
 * The weight-store namespace of one attempt of a training job. A resumed job (attempt a + 1) restarts from
 * its last checkpoint and republishes versions the dead attempt may already have published with other
 * bytes; separate namespaces keep a worker's cached copy of the old attempt's version from ever being used.
 */
export function weightsId(jobId: string, attempt: number): string {
  return `${jobId}@${attempt}`;
}
