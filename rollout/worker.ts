/**
 * The rollout worker: stateless, takes group jobs from the `rollouts` queue, loads the policy version the
 * job names (cached), runs the K episodes with batched generation and writes token-level trajectories.
 * A killed worker loses nothing: its job's lock expires, BullMQ moves it back to the queue and another
 * worker redoes it; results are written once per group (HSETNX), so a redone group cannot land twice.
 *
 * The same queue carries MuZero self-play jobs (`kind: 'selfplay'`): the worker loads the networks of the
 * version the job names, plays the job's programs in lock-step with search (rollout/selfplay.ts) and
 * writes the episodes once per job (HSETNX) for the learner, which owns the replay buffer.
 */
import os from 'node:os';
import { Worker, UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { HorizonError, ProtocolError, ServiceError, describeError } from '../core/errors.js';
import { Rng, mixSeed } from '../core/rng.js';
import { resolveConfig, type ResolvedConfig } from '../configs/resolve.js';
import { loadEnvDefinition, validateEnvOptions, checkEnvInstance } from '../envs/loader.js';
import type { EnvDefinition } from '../envs/types.js';
import type { CompiledProgram } from '../envs/malloc/types.js';
import { selectBackend } from '../models/backend.js';
import { EngineDecoder } from '../models/engine/decoder.js';
import { openEngine } from '../models/engine/index.js';
import { EngineModel } from '../models/engine/model.js';
import type { Runtime } from '../models/engine/runtime.js';
import type { GenerationPolicy } from '../models/sampler.js';
import { TransformerPolicy, resolvePolicyConfig } from '../models/transformer.js';
import { MuZeroNetworks } from '../models/muzero/networks.js';
import { BYTE_TOKENIZER_VOCAB_SIZE as VOCAB_SIZE } from '../models/tokenizer.js';
import { connectRedis } from './connection.js';
import { queueConnection } from './queue-connection.js';
import { runEpisodes } from './runners.js';
import {
  PROTOCOL_VERSION,
  QUEUES,
  DEFAULT_PREFIX,
  jobKeys,
  loadProgramRef,
  parseRolloutJob,
  rolloutId,
  weightsId,
  selfPlayJobId,
  type GroupJobPayload,
  type GroupResult,
  type ProgramRef,
  type SelfPlayJobPayload,
  type SelfPlayResult,
} from './protocol.js';
import { selfPlayGames } from './selfplay.js';
import { WeightCache, WeightStore } from './weight-store.js';

/** Options of a rollout worker process. */
export interface RolloutWorkerOptions {
  readonly redisUrl: string;
  /** Key prefix shared with the learner. Default `horizon`. */
  readonly prefix?: string;
  /** Groups processed at once. Default 1. */
  readonly concurrency?: number;
  /** Tensor backend; default: the job config's `workers.backend` or `backend`. */
  readonly backend?: 'auto' | 'engine' | 'webgpu' | 'tensorflow' | 'wasm' | 'cpu';
  /** Lock of a group job; a dead worker's group is redone after about lockDuration + stalledInterval. Default 10 s. */
  readonly lockDurationMs?: number;
  /** How often stalled jobs are looked for. Default 5 s. */
  readonly stalledIntervalMs?: number;
  readonly workerId?: string;
  readonly log?: (line: string) => void;
}

/** A running worker; `close()` waits for the groups in progress. */
export class RolloutWorker {
  readonly workerId: string;
  private readonly options: Required<Omit<RolloutWorkerOptions, 'backend'>> & Pick<RolloutWorkerOptions, 'backend'>;
  private redis?: Redis;
  private worker?: Worker;
  private weights?: WeightCache<Uint8Array>;
  private readonly envs = new Map<string, Promise<EnvDefinition>>();
  /** Policies by (model shape, job, version); groups in flight may use different versions at once. */
  private readonly policies = new Map<string, { policy: GenerationPolicy; dispose: () => void; inUse: number; lastUsed: number }>();
  /** The GPU engine, when this worker decodes on it (backend auto on a GPU machine, or engine). */
  private engine?: Runtime;
  private readonly checkedEnvs = new Set<string>();
  /** MuZero networks by (job, attempt, version), pooled like the policies. */
  private readonly networks = new Map<string, { networks: MuZeroNetworks; inUse: number; lastUsed: number }>();
  /** Compiled self-play programs by (configDir, ref): generating or parsing one is done once per worker. */
  private readonly programs = new Map<string, CompiledProgram>();
  private backendName?: string;
  /** Jobs (groups and self-play jobs) completed by this worker (for tests and the log). */
  groupsDone = 0;

  constructor(options: RolloutWorkerOptions) {
    this.workerId = options.workerId ?? `${os.hostname()}:${process.pid}`;
    this.options = {
      prefix: DEFAULT_PREFIX,
      concurrency: 1,
      lockDurationMs: 10_000,
      stalledIntervalMs: 5_000,
      workerId: this.workerId,
      log: (line) => console.error(line),
      ...options,
    };
    if (this.options.concurrency < 1) throw new RangeError('concurrency must be ≥ 1');
  }

  /** Connect and start taking group jobs. */
  async start(): Promise<void> {
    this.redis = await connectRedis(this.options.redisUrl);
    const store = new WeightStore(this.redis, { prefix: this.options.prefix });
    this.weights = new WeightCache((jobId, version) => store.get(jobId, version), { capacity: 4 });
    this.worker = new Worker(QUEUES.rollouts, (job) => this.process(job), {
      connection: queueConnection(this.options.redisUrl),
      prefix: this.options.prefix,
      concurrency: this.options.concurrency,
      lockDuration: this.options.lockDurationMs,
      stalledInterval: this.options.stalledIntervalMs,
      maxStalledCount: 3,
      // Stored on each job as `processedBy`, so an operator (and the tests) can tell which process holds a group.
      name: this.workerId,
      autorun: true,
    });
    this.worker.on('failed', (job, err) => this.options.log(`group ${job?.id ?? '?'} failed: ${describeError(err)}`));
    this.worker.on('error', (err) => this.options.log(`worker error: ${describeError(err)}`));
    await this.worker.waitUntilReady();
    this.options.log(`worker ${this.workerId} ready (concurrency ${this.options.concurrency})`);
  }

  /** Stop taking jobs, finish the ones in progress, disconnect. */
  async close(): Promise<void> {
    await this.worker?.close();
    for (const entry of this.policies.values()) entry.dispose();
    this.policies.clear();
    for (const { networks } of this.networks.values()) networks.dispose();
    this.networks.clear();
    this.redis?.disconnect();
  }

  private async process(job: Job): Promise<{ readonly discarded: boolean; readonly wallMs: number }> {
    try {
      const parsed = parseRolloutJob(job.data, String(job.id));
      return parsed.kind === 'selfplay' ? await this.processSelfPlay(job, parsed.payload) : await this.processGroup(job, parsed.payload);
    } catch (err) {
      // Bad input and protocol mismatches are never retried; env failures are (BullMQ attempts + backoff).
      if (err instanceof HorizonError && !err.retryable) throw new UnrecoverableError(describeError(err));
      throw err;
    }
  }

  private async processGroup(job: Job, payload: GroupJobPayload): Promise<Pick<GroupResult, 'groupId' | 'discarded' | 'wallMs'>> {
    const started = Date.now();
    const redis = this.redis!;
    const keys = jobKeys(this.options.prefix, payload.jobId);
    const groupId = `${payload.jobId}/${payload.attempt}/${payload.iteration}/${payload.groupIndex}`;
    const status = await redis.hgetall(keys.status);
    if (status.state !== 'running' || Number(status.attempt) !== payload.attempt) {
      // The training job was cancelled, finished, or resumed as a newer attempt: skip the work.
      return { groupId, discarded: true, wallMs: Date.now() - started };
    }
    const config = resolveConfig(payload.config, { configDir: payload.configDir });
    if (config.algorithm === 'muzero')
      throw new ProtocolError(
        `group job ${job.id} carries a config of algorithm muzero, which has no environment; muzero runs dispatch self-play jobs`,
      );
    await this.ensureBackend(config);
    const env = await this.loadEnv(config);
    const envOptions = validateEnvOptions(env, config.env.options);
    await this.checkEnvOnce(env, envOptions, config);
    const { policy, release } = await this.acquirePolicy(config, payload);
    try {
      return await this.runAndStore(job, payload, config, env, envOptions, policy, groupId, started);
    } finally {
      release();
    }
  }

  private async runAndStore(
    job: Job,
    payload: GroupJobPayload,
    config: ResolvedConfig,
    env: EnvDefinition,
    envOptions: unknown,
    policy: GenerationPolicy,
    groupId: string,
    started: number,
  ): Promise<Pick<GroupResult, 'groupId' | 'discarded' | 'wallMs'>> {
    const redis = this.redis!;
    const keys = jobKeys(this.options.prefix, payload.jobId);
    const K = config.rollout.groupSize;
    const stopKey = keys.stop(payload.attempt, payload.iteration);
    // One progress field per processing run, so a killed run's partial count cannot add to the redo's.
    const runField = `${payload.groupIndex}|${this.workerId}|${started}`;
    const outcome = await runEpisodes(
      policy,
      {
        env,
        envOptions,
        task: payload.task,
        groupSize: K,
        rngs: Array.from(
          { length: K },
          (_, k) => new Rng(mixSeed(config.seed, payload.attempt, payload.iteration, payload.groupIndex, k, job.attemptsMade)),
        ),
        rolloutIds: Array.from({ length: K }, (_, k) =>
          rolloutId(payload.jobId, payload.attempt, payload.iteration, payload.groupIndex, k),
        ),
        groupId,
        policyVersion: payload.policyVersion,
        shouldStop: config.rollout.stragglerStop.enabled ? async () => (await redis.exists(stopKey)) === 1 : undefined,
        // Per-rollout progress only feeds the straggler early stop.
        onFinished: config.rollout.stragglerStop.enabled
          ? async () => {
              await redis.hincrby(keys.progress(payload.attempt, payload.iteration), runField, 1);
            }
          : undefined,
      },
      config,
    );
    const result: GroupResult = {
      v: PROTOCOL_VERSION,
      groupId,
      discarded: false,
      trajectories: outcome.trajectories as GroupResult['trajectories'],
      cancelled: outcome.cancelled,
      workerId: this.workerId,
      wallMs: Date.now() - started,
      generatedTokens: outcome.generatedTokens,
    };
    const resultsKey = keys.results(payload.attempt, payload.iteration);
    const arrivalsKey = keys.arrivals(payload.attempt, payload.iteration);
    await redis
      .multi()
      .hsetnx(resultsKey, String(payload.groupIndex), JSON.stringify(result))
      .expire(resultsKey, 24 * 3600)
      .rpush(arrivalsKey, String(payload.groupIndex))
      .expire(arrivalsKey, 24 * 3600)
      .exec();
    this.groupsDone += 1;
    return { groupId, discarded: false, wallMs: result.wallMs };
  }

  /**
   * A MuZero self-play job: the job's programs, one game each, played in lock-step with the search of
   * `muzero.search` on the networks of `policyVersion`. The random stream is a function of (seed,
   * attempt, job index, BullMQ attempt), so a redo after a failure plays other games.
   */
  private async processSelfPlay(
    job: Job,
    payload: SelfPlayJobPayload,
  ): Promise<{ selfPlayJob: string; discarded: boolean; wallMs: number }> {
    const started = Date.now();
    const redis = this.redis!;
    const keys = jobKeys(this.options.prefix, payload.jobId);
    const id = selfPlayJobId(payload.jobId, payload.attempt, payload.jobIndex);
    const status = await redis.hgetall(keys.status);
    if (status.state !== 'running' || Number(status.attempt) !== payload.attempt)
      return { selfPlayJob: id, discarded: true, wallMs: Date.now() - started };
    const config = resolveConfig(payload.config, { configDir: payload.configDir });
    if (config.algorithm !== 'muzero')
      throw new ProtocolError(
        `self-play job ${job.id} carries a config of algorithm ${config.algorithm}; self-play plays muzero jobs only`,
      );
    await this.ensureBackend(config);
    const programs = payload.programs.map((ref) => ({ id: ref.id, program: this.programFor(ref, payload.configDir) }));
    const { networks, release } = await this.acquireNetworks(payload);
    let episodes: SelfPlayResult['episodes'];
    try {
      const rng = new Rng(mixSeed(config.seed, payload.attempt, payload.jobIndex, job.attemptsMade));
      episodes = await selfPlayGames(
        networks,
        programs,
        { search: config.muzero.search, game: config.muzero.game, policyVersion: payload.policyVersion },
        rng,
      );
    } finally {
      release();
    }
    const result: SelfPlayResult = {
      v: PROTOCOL_VERSION,
      jobIndex: payload.jobIndex,
      episodes,
      workerId: this.workerId,
      wallMs: Date.now() - started,
    };
    const resultsKey = keys.selfPlayResults(payload.attempt);
    const arrivalsKey = keys.selfPlayArrivals(payload.attempt);
    await redis
      .multi()
      .hsetnx(resultsKey, String(payload.jobIndex), JSON.stringify(result))
      .expire(resultsKey, 24 * 3600)
      .rpush(arrivalsKey, String(payload.jobIndex))
      .expire(arrivalsKey, 24 * 3600)
      .exec();
    this.groupsDone += 1;
    return { selfPlayJob: id, discarded: false, wallMs: result.wallMs };
  }

  private programFor(ref: ProgramRef, configDir: string): CompiledProgram {
    const key = JSON.stringify([configDir, ref]);
    let program = this.programs.get(key);
    if (program === undefined) {
      program = loadProgramRef(ref, configDir);
      // A long-lived worker serves many runs: bound the cache (a training set is far smaller).
      if (this.programs.size >= 4096) this.programs.clear();
      this.programs.set(key, program);
    }
    return program;
  }

  /** The networks holding the weights of (job, attempt, version); pooled and evicted like the token policies. */
  private async acquireNetworks(payload: SelfPlayJobPayload): Promise<{ networks: MuZeroNetworks; release: () => void }> {
    const key = JSON.stringify([payload.jobId, payload.attempt, payload.policyVersion]);
    let entry = this.networks.get(key);
    if (!entry) {
      const bytes = await this.weights!.get(weightsId(payload.jobId, payload.attempt), payload.policyVersion);
      entry = this.networks.get(key);
      if (!entry) {
        entry = { networks: MuZeroNetworks.fromSafetensors(bytes), inUse: 0, lastUsed: 0 };
        this.networks.set(key, entry);
      }
    }
    entry.inUse += 1;
    entry.lastUsed = Date.now();
    const limit = this.options.concurrency + 1;
    const idle = [...this.networks.entries()].filter(([, e]) => e.inUse === 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    while (this.networks.size > limit && idle.length > 0) {
      const [oldKey, old] = idle.shift()!;
      old.networks.dispose();
      this.networks.delete(oldKey);
    }
    const held = entry;
    return { networks: held.networks, release: () => void (held.inUse -= 1) };
  }

  private async ensureBackend(config: ResolvedConfig): Promise<void> {
    const requested = this.options.backend ?? config.workers.backend ?? config.backend;
    if (this.backendName !== undefined) return;
    if ((requested === 'auto' || requested === 'engine') && config.algorithm !== 'muzero') {
      const engine = await openEngine(requested);
      if (engine.runtime) {
        this.engine = engine.runtime;
        this.backendName = 'engine';
        // tfjs stays on the CPU for what the engine does not run.
        await selectBackend('engine');
        this.options.log(`worker ${this.workerId}: backend engine (decoding on ${engine.reason})`);
        return;
      }
      if (requested === 'engine') throw new ServiceError(`backend 'engine' was requested but is unavailable: ${engine.reason}`);
    }
    const chosen = await selectBackend(requested);
    this.backendName = chosen.name;
    this.options.log(`worker ${this.workerId}: backend ${chosen.name} (${chosen.reason})`);
  }

  private loadEnv(config: ResolvedConfig): Promise<EnvDefinition> {
    const key = JSON.stringify([config.env.name, config.env.module, config.derived.configDir]);
    let loading = this.envs.get(key);
    if (!loading) {
      loading = loadEnvDefinition({ name: config.env.name, module: config.env.module }, config.derived.configDir);
      loading.catch(() => this.envs.delete(key));
      this.envs.set(key, loading);
    }
    return loading;
  }

  /** A plug-in's `create` must return an object with reset/step/score: checked once per env, before any episode. */
  private async checkEnvOnce(env: EnvDefinition, envOptions: unknown, config: ResolvedConfig): Promise<void> {
    const source = config.env.module ?? config.env.name ?? env.name;
    if (this.checkedEnvs.has(source)) return;
    const probe = await env.create(envOptions);
    checkEnvInstance(probe, source);
    await probe.close?.();
    this.checkedEnvs.add(source);
  }

  /**
   * The policy holding the weights of (job, version). Several versions can be live at once (concurrency > 1
   * with maxStaleness > 0), so policies are pooled per version and the least recently used idle one is evicted.
   */
  private async acquirePolicy(
    config: ResolvedConfig,
    payload: GroupJobPayload,
  ): Promise<{ policy: GenerationPolicy; release: () => void }> {
    const key = JSON.stringify([config.model, payload.jobId, payload.policyVersion]);
    let entry = this.policies.get(key);
    if (!entry) {
      const bytes = await this.weights!.get(weightsId(payload.jobId, payload.attempt), payload.policyVersion);
      entry = this.policies.get(key);
      if (!entry) {
        entry = await this.loadPolicy(config, bytes);
        this.policies.set(key, entry);
      }
    }
    entry.inUse += 1;
    entry.lastUsed = Date.now();
    this.evictIdlePolicies();
    const held = entry;
    return { policy: held.policy, release: () => void (held.inUse -= 1) };
  }

  /** A policy of these weights: the engine's decoder on a GPU, else the tfjs policy. */
  private async loadPolicy(
    config: ResolvedConfig,
    bytes: Uint8Array,
  ): Promise<{ policy: GenerationPolicy; dispose: () => void; inUse: number; lastUsed: number }> {
    const policyConfig = resolvePolicyConfig({ ...config.model, vocabSize: VOCAB_SIZE });
    if (this.engine) {
      const model = await EngineModel.create(this.engine, policyConfig, config.seed, {
        precision: config.engine.precision,
        training: false,
      });
      try {
        model.loadSafetensors(bytes);
        const decoder = await EngineDecoder.create(model);
        return { policy: decoder, dispose: () => (decoder.dispose(), model.dispose()), inUse: 0, lastUsed: 0 };
      } catch (err) {
        model.dispose();
        throw err;
      }
    }
    const policy = new TransformerPolicy(policyConfig, config.seed);
    policy.loadSafetensors(bytes);
    return { policy, dispose: () => policy.dispose(), inUse: 0, lastUsed: 0 };
  }

  private evictIdlePolicies(): void {
    const limit = this.options.concurrency + 1;
    const idle = [...this.policies.entries()].filter(([, e]) => e.inUse === 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    while (this.policies.size > limit && idle.length > 0) {
      const [key, entry] = idle.shift()!;
      entry.dispose();
      this.policies.delete(key);
    }
  }
}
