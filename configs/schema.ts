/**
 * The whole training configuration, declared once. Every field has a default and a description; the
 * descriptions are the documentation (`horizon config-reference` renders them to docs/config-reference.md).
 * Objects are strict: an unknown key is an error naming its path.
 */
import { z } from 'zod';
import { MuZeroOptionsSchema } from './muzero.js';
import { WorkloadSchema } from '../envs/malloc/generators.js';

/** Transformer policy shape (Llama/Qwen2 family). */
export const ModelSchema = z
  .object({
    dModel: z.number().int().min(8).max(8192).default(64).describe('Hidden size of the transformer.'),
    nLayers: z.number().int().min(1).max(128).default(2).describe('Number of transformer blocks.'),
    nHeads: z.number().int().min(1).max(128).default(4).describe('Attention heads (query).'),
    nKvHeads: z
      .number()
      .int()
      .min(1)
      .max(128)
      .optional()
      .describe('Key/value heads for grouped-query attention; defaults to nHeads (plain multi-head).'),
    ffnHidden: z
      .number()
      .int()
      .min(8)
      .max(65536)
      .optional()
      .describe('SwiGLU hidden size; defaults to round(8/3 · dModel) rounded up to a multiple of 8.'),
    maxSeqLen: z.number().int().min(16).max(131072).default(256).describe('Longest context in tokens (RoPE positions).'),
    ropeTheta: z.number().positive().default(10000).describe('RoPE base frequency.'),
    normEps: z.number().positive().default(1e-5).describe('RMSNorm epsilon.'),
    qkvBias: z.boolean().default(false).describe('Add a bias to the q/k/v projections (Qwen2 style).'),
    tieEmbeddings: z
      .boolean()
      .default(true)
      .describe(
        'The output layer shares the token embedding (logits = h·Eᵀ); false gives it its own matrix `lm_head.weight`, as in Llama 3 8B or Qwen2 7B.',
      ),
    initStd: z.number().positive().default(0.02).describe('Standard deviation of the initial weights.'),
  })
  .strict();

/** Where the environment comes from: a built-in name or a user's module path. */
export const EnvSchema = z
  .object({
    name: z
      .string()
      .nullish()
      .transform((v) => v ?? undefined)
      .describe(
        'Built-in environment name (e.g. `toy/guess`). Token-policy algorithms need exactly one of name / module (`null` clears one from the command line); `muzero` reads no env.',
      ),
    module: z
      .string()
      .nullish()
      .transform((v) => v ?? undefined)
      .describe('Path (relative to the config file) of a module whose default export is an EnvDefinition.'),
    options: z.record(z.string(), z.unknown()).default({}).describe('Options passed to the environment, validated by its own schema.'),
  })
  .strict();

export const RolloutSchema = z
  .object({
    tasksPerIteration: z.number().int().min(1).max(100000).default(16).describe('T: tasks sampled per iteration (paper: 40).'),
    groupSize: z.number().int().min(2).max(1024).default(6).describe('K: rollouts per task; one rollout job carries one group (paper: 6).'),
    temperature: z
      .number()
      .positive()
      .max(10)
      .default(1.0)
      .describe('Sampling temperature; no top-p/top-k so learner and sampler probabilities agree.'),
    maxTurns: z.number().int().min(1).max(10000).default(40).describe('Agent turns per episode (paper: 40 in training).'),
    maxTokensPerTurn: z.number().int().min(1).max(1_000_000).default(1500).describe('Generated tokens per agent turn (paper: 1500).'),
    maxObservationTokens: z
      .number()
      .int()
      .min(16)
      .max(1_000_000)
      .default(3000)
      .describe('Environment output longer than this (tokens) is truncated with a note (paper: ~3K).'),
    maxContextTokens: z
      .number()
      .int()
      .min(16)
      .max(10_000_000)
      .optional()
      .describe('Total context cap; the episode ends when the next turn could overflow it. Defaults to model.maxSeqLen.'),
    trainOnEndOfTurn: z
      .boolean()
      .default(true)
      .describe(
        'Count the sampled end-of-turn token as a policy token (the reference code masks it; a model trained from scratch must learn to stop).',
      ),
    episodeRetries: z
      .number()
      .int()
      .min(0)
      .max(100)
      .default(2)
      .describe('Retries of a failed episode with a fresh env before the whole group fails.'),
    stragglerStop: z
      .object({
        enabled: z.boolean().default(true).describe('Cancel the slowest rollouts once enough have finished.'),
        perTaskFraction: z.number().min(0).max(1).default(0.75).describe('Every task needs ≥ ceil(fraction·K) finished rollouts.'),
        totalFraction: z.number().min(0).max(1).default(0.9).describe('And at least this share of all rollouts finished.'),
      })
      .strict()
      .prefault({})
      .describe('Straggler early stop (LOOP step 3).'),
    maxStaleness: z
      .number()
      .int()
      .min(0)
      .max(64)
      .default(0)
      .describe('0 = synchronous (paper). s > 0 lets the next iteration’s groups be generated with weights up to s versions old.'),
    importanceWeightCap: z
      .number()
      .min(1)
      .default(2)
      .describe('With maxStaleness > 0: truncation C of the per-token importance weight min(p_old/p_sampler, C) applied to stale samples.'),
    groupTimeoutSec: z.number().int().min(5).max(86400).default(1800).describe('A group not finished after this long fails the iteration.'),
    context: z
      .enum(['multi-turn', 'fresh', 'delethink', 'longcot'])
      .default('multi-turn')
      .describe(
        'What the policy sees at each turn. `multi-turn`: the whole episode so far (LOOP). `fresh`: only the latest observation, each turn its own training row (Mem-α). ' +
          '`delethink`: chunked Markovian thinking per the `delethink` section (one answer per episode). `longcot`: one chunk holding the whole `delethink` thinking budget (the baseline).',
      ),
  })
  .strict();

export const LoopSchema = z
  .object({
    epochs: z.number().int().min(1).max(100).default(2).describe('N_epoch: passes over the iteration’s rollouts (paper: 2).'),
    minibatchSize: z
      .number()
      .int()
      .min(1)
      .max(100000)
      .default(32)
      .describe('M: rollouts per minibatch and the fixed loss divisor (paper: 32).'),
    clipEpsilon: z.number().positive().max(1).default(0.1).describe('ε of the clipped objective (paper: 0.1).'),
    clipLow: z
      .enum(['paper', 'code'])
      .default('paper')
      .describe('Lower clip bound: `paper` = 1 − ε, `code` = 1/(1 + ε) (reference implementation).'),
    ratio: z
      .enum(['token', 'turn', 'trajectory'])
      .default('token')
      .describe('Importance ratio granularity: per token (LOOP), per agent turn, or per rollout (bandit).'),
    advantage: z
      .enum(['leave-one-out', 'group-mean'])
      .default('leave-one-out')
      .describe('Baseline: leave-one-out mean (LOOP, RLOO) or the group mean including the sample (GRPO).'),
    normalize: z.enum(['none', 'std']).default('none').describe('Divide advantages by the group std (`std` = RwNorm / GRPO).'),
    advantageFilter: z.number().min(0).default(0.01).describe('Drop rollouts with |A| below this (removes all-equal groups).'),
    klCoef: z.number().min(0).default(0).describe('Coefficient of a KL penalty to the frozen initial policy (GRPO uses one; LOOP none).'),
    maxKl: z.number().positive().default(20).describe('Abort the iteration’s updates when −mean Σ log r exceeds this.'),
    recomputeOldLogProbs: z
      .boolean()
      .default(true)
      .describe('Recompute old log-probs with the learner’s weights before the first update (step 7).'),
    fullBatch: z.boolean().default(false).describe('One minibatch holding every rollout (on-policy RLOO / GRPO).'),
    clipHighEpsilon: z
      .number()
      .positive()
      .max(10)
      .nullish()
      .transform((v) => v ?? undefined)
      .describe(
        'ε of the upper clip bound 1 + ε when it differs from `clipEpsilon` ("clip-higher", Delethink: 0.26); unset = `clipEpsilon`.',
      ),
    dualClip: z
      .number()
      .gt(1)
      .nullish()
      .transform((v) => v ?? undefined)
      .describe('Dual clip c: for A < 0 each token term is bounded below by c·A (Delethink: 3); unset = off.'),
    aggregation: z
      .enum(['fixed-divisor', 'trace-length', 'token-mean'])
      .default('fixed-divisor')
      .describe(
        'How token terms are summed. `fixed-divisor`: (1/M) Σ_x (1/|a(x)|) Σ_t (LOOP). `trace-length`: (1/N) Σ_traces (1/ℓ(τ)) Σ_chunks Σ_t (Delethink). `token-mean`: mean over every output token of the minibatch (Mem-α).',
      ),
    importanceSampling: z
      .enum(['stale', 'always'])
      .default('stale')
      .describe(
        'Truncated importance weights min(p_old/p_sampler, rollout.importanceWeightCap): only for rows sampled by an older policy version (`stale`) or on every token (`always`, Delethink).',
      ),
    advantageUnit: z
      .enum(['rollout', 'turn'])
      .default('rollout')
      .describe(
        '`rollout`: one return per rollout, shared by its rows. `turn`: each turn is a sample with its own reward (env `turnRewards`), grouped with all turns of all rollouts of the task (Mem-α).',
      ),
  })
  .strict();

export const DelethinkSchema = z
  .object({
    chunkTokens: z.number().int().min(8).max(1_000_000).default(8192).describe('C: tokens generated in the first chunk (paper: 8192).'),
    carryoverTokens: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(4096)
      .describe('m: carryover; later chunks generate C − m tokens (paper: C/2).'),
    headTokens: z
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .default(100)
      .describe('h: first tokens of chunk 1 kept in every later prompt (paper: 100).'),
    maxChunks: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(5)
      .describe('I: chunk cap of a trace in training; thinking budget C + (I − 1)(C − m) (paper: 5 → 24K).'),
    carry: z
      .enum(['paper', 'released'])
      .default('paper')
      .describe(
        'Carryover of chunk l ≥ 2: `paper` = q ⊕ head ⊕ last m tokens; `released` = q ⊕ head ⊕ last m − h tokens (head + tail = m).',
      ),
  })
  .strict()
  .refine((d) => d.carryoverTokens < d.chunkTokens, {
    message: 'delethink.carryoverTokens (m) must be smaller than delethink.chunkTokens (C)',
  })
  .refine((d) => d.headTokens < d.carryoverTokens, {
    message: 'delethink.headTokens (h) must be smaller than delethink.carryoverTokens (m)',
  });

export const OptimSchema = z
  .object({
    lr: z.number().positive().max(1).default(5e-5).describe('AdamW learning rate, constant (paper: 5e-5 for LoRA on 32B).'),
    weightDecay: z.number().min(0).max(1).default(0.01).describe('Decoupled weight decay.'),
    beta1: z.number().min(0).lt(1).default(0.9).describe('Adam β1.'),
    beta2: z.number().min(0).lt(1).default(0.999).describe('Adam β2.'),
    eps: z.number().positive().default(1e-8).describe('Adam ε.'),
    gradClip: z.number().positive().default(1.0).describe('Global grad-norm clip (paper 1.0, code 0.1).'),
  })
  .strict();

export const EngineSchema = z
  .object({
    precision: z
      .enum(['auto', 'f32', 'f16', 'f16-matrix'])
      .default('auto')
      .describe(
        'Matmul precision of the GPU engine (backend auto/engine). auto: f16 tensor cores (subgroup matrices) where the adapter has them, else f32. f16: f16 operands, f32 accumulation, on any adapter with shader-f16. Weights, optimizer state and log-probs stay f32; f16 paths use dynamic loss scaling.',
      ),
  })
  .strict();

export const SftSchema = z
  .object({
    steps: z
      .number()
      .int()
      .min(0)
      .max(10_000_000)
      .default(0)
      .describe('Supervised warm-start steps on scripted demonstrations before RL (0 = none).'),
    batchSize: z.number().int().min(1).max(100000).default(32).describe('Demonstrations per SFT step.'),
    lr: z.number().positive().max(1).default(1e-3).describe('SFT learning rate (AdamW, same decay and clip as RL).'),
    split: z.string().default('train').describe('Task split the demonstrations are drawn from.'),
  })
  .strict();

export const TrainSchema = z
  .object({
    iterations: z
      .number()
      .int()
      .min(0)
      .max(10_000_000)
      .default(100)
      .describe('RL iterations (one iteration = T·K rollouts, then updates).'),
    checkpointEvery: z.number().int().min(1).default(10).describe('Save a checkpoint every this many iterations (and at the end).'),
    keepCheckpoints: z
      .number()
      .int()
      .min(1)
      .default(3)
      .describe('Checkpoints kept on disk (oldest removed first); the warm start (iteration 0) is always kept as well.'),
    evalEvery: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('Greedy-free evaluation on the eval split every this many iterations (0 = off).'),
    evalTasks: z.number().int().min(1).default(64).describe('Tasks per evaluation.'),
    split: z.string().default('train').describe('Task split RL samples from.'),
    initFrom: z
      .string()
      .nullish()
      .transform((v) => v ?? undefined)
      .describe(
        'Start from the weights of this checkpoint (a checkpoint directory, or a run directory for its latest) instead of a fresh init; the SFT stage is skipped. A relative path is looked up next to the config file, then in the working directory. For comparisons from one SFT checkpoint.',
      ),
    sampleGroups: z
      .number()
      .int()
      .min(0)
      .max(64)
      .default(2)
      .describe('Whole groups per iteration recorded for inspection (trajectory viewer); the newest 500 iterations are kept in Redis.'),
  })
  .strict();

export const WorkersSchema = z
  .object({
    count: z
      .number()
      .int()
      .min(0)
      .max(1024)
      .default(2)
      .describe('Rollout worker processes `horizon train` starts (0 = rely on external `horizon worker`s).'),
    concurrency: z.number().int().min(1).max(1024).default(1).describe('Groups each worker runs at once.'),
    backend: z
      .enum(['auto', 'engine', 'webgpu', 'tensorflow', 'wasm', 'cpu'])
      .optional()
      .describe(
        'Backend of the workers; defaults to the top-level backend. auto and engine decode on the GPU engine (KV cache and sampling on the GPU) where it is available, as for the learner.',
      ),
  })
  .strict();

/** One entry of `muzero.programs.generate`: `count` programs of one generator, seeds `seed`, `seed + 1`, … */
export const GeneratedProgramsSchema = z
  .object({
    count: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(1)
      .describe(
        'Programs made from this entry: seeds workload.seed, workload.seed + 1, …, each a training program named `<generator>-s<seed>`.',
      ),
    workload: WorkloadSchema.describe(
      'Generator and knobs (docs/mallocmuzero.md, "Workloads"); `seed` is the first seed. The held-out set uses seeds ≥ 1000: train below.',
    ),
  })
  .strict();

/** `muzero.programs`: the training programs self-play draws from. */
export const MuZeroProgramsSchema = z
  .object({
    generate: z
      .array(GeneratedProgramsSchema)
      .prefault([
        { count: 32, workload: { generator: 'random', seed: 0, instructions: 48 } },
        { count: 16, workload: { generator: 'transformer', seed: 0, layers: 2, seqLen: 128, dModel: 128, heads: 2 } },
        { count: 16, workload: { generator: 'convnet', seed: 0, stages: 2, blocksPerStage: 2, imageSize: 32, channels: 16 } },
      ])
      .describe('Generated training programs: a list of {count, workload}. Two entries must not make the same `<generator>-s<seed>`.'),
    files: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Program files (.json programs, MiniMalloc .csv) or directories of them (every .json and .csv but manifest.json), relative to the config file; they must exist on the workers too.',
      ),
    csvCapacityFraction: z
      .number()
      .gt(0)
      .max(1)
      .default(0.5)
      .describe('Fast capacity of a MiniMalloc CSV program as a share of its peak live bytes (the CSV format carries no capacity).'),
  })
  .strict();

/** `muzero.selfPlay`: self-play jobs on the rollouts queue. */
export const SelfPlaySchema = z
  .object({
    gamesPerJob: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .default(16)
      .describe('Games one self-play job plays, in lock-step (one batched network call per simulation step for all of them).'),
    jobsInFlight: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(8)
      .describe(
        'Self-play jobs the learner keeps queued or running, each with the newest weights at the time it is queued; about workers × concurrency (+ a few) keeps every worker busy without letting queued jobs grow stale.',
      ),
    jobTimeoutSec: z
      .number()
      .int()
      .min(5)
      .max(86_400)
      .default(1800)
      .describe('A self-play job not finished after this long is given up (and replaced).'),
  })
  .strict();

/** `muzero.learner`: the learner's pacing. */
export const MuZeroLearnerSchema = z
  .object({
    updatesPerIteration: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(32)
      .describe(
        'Updates (each a `muzero.train.batchSize` sample from the replay) per iteration; weights are published after each iteration.',
      ),
    minReplayPositions: z
      .number()
      .int()
      .min(1)
      .default(2048)
      .describe(
        'Positions the replay must hold before updates start; the learner waits for self-play only until then (also after a resume, which starts with an empty replay).',
      ),
  })
  .strict();

/** `muzero.reanalyse`: refreshing stored games with the newest networks. */
export const MuZeroReanalyseSchema = z
  .object({
    episodesPerIteration: z
      .number()
      .int()
      .min(0)
      .max(100_000)
      .default(0)
      .describe('Stored games re-searched with the newest networks each iteration, least-refreshed first (new π and ν, hence z); 0 = off.'),
  })
  .strict();

/** `muzero.eval`: what `train.evalEvery` evaluates. */
export const MuZeroEvalSchema = z
  .object({
    heldout: z.boolean().default(true).describe('Evaluate on the committed held-out set (data/malloc/heldout/, 24 programs).'),
    files: z
      .array(z.string().min(1))
      .default([])
      .describe('More evaluation programs: .json / MiniMalloc .csv files or directories of them, relative to the config file.'),
    maxPrograms: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('Evaluate only the first n programs (held-out set first, then files); 0 = all.'),
    deterministic: z
      .boolean()
      .default(true)
      .describe(
        'Search without noise when evaluating (Gumbel scale 0, no Dirichlet noise, most-visited action), with `muzero.search` otherwise.',
      ),
  })
  .strict();

/**
 * `muzero:` — the mallocMuZero agent (algorithm `muzero`): game, networks, search, replay and update
 * options (configs/muzero.ts), plus how the run is orchestrated: training programs, self-play
 * jobs, learner pacing, reanalyse and periodic evaluation.
 */
export const MuZeroSchema = MuZeroOptionsSchema.extend({
  programs: MuZeroProgramsSchema.prefault({}).describe('Training programs.'),
  selfPlay: SelfPlaySchema.prefault({}).describe('Self-play jobs on the rollouts queue.'),
  learner: MuZeroLearnerSchema.prefault({}).describe('Learner pacing.'),
  reanalyse: MuZeroReanalyseSchema.prefault({}).describe('Reanalyse of stored games.'),
  eval: MuZeroEvalSchema.prefault({}).describe('Periodic evaluation (`train.evalEvery`) against the XLA-like baseline.'),
});

export const RunConfigSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(100)
      .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, . _ - only')
      .default('run')
      .describe('Run name (prefix of the job id).'),
    algorithm: z
      .enum(['loop', 'loop-rwnorm', 'grpo', 'grpo-nokl', 'rloo', 'delethink', 'longcot', 'memalpha', 'custom', 'muzero'])
      .default('loop')
      .describe(
        'Recipe preset: sets `loop.*` (and rollout) to the paper’s settings; `custom` uses `loop.*` as written; `muzero` trains the mallocMuZero agent (the `muzero` section, no env).',
      ),
    seed: z.number().int().min(0).default(0).describe('Seed of every random choice (tasks, init, sampling).'),
    backend: z
      .enum(['auto', 'engine', 'webgpu', 'tensorflow', 'wasm', 'cpu'])
      .default('auto')
      .describe(
        "Tensor backend. auto: the learner trains on horizon's own GPU engine where Dawn finds a hardware GPU adapter, else tfjs on tfjs-node if it loads, else wasm. engine: the GPU engine on any adapter (lavapipe included; an error if none). webgpu: tfjs's WebGPU backend (slower; for comparisons).",
      ),
    env: EnvSchema.prefault({}).describe(
      'The environment of a token-policy algorithm (they need one; `muzero` reads none and may leave the section out).',
    ),
    model: ModelSchema.prefault({}).describe('Policy transformer.'),
    rollout: RolloutSchema.prefault({}).describe('Rollout collection.'),
    loop: LoopSchema.prefault({}).describe('Policy-gradient update (LOOP, GRPO, RLOO, Delethink, Mem-α are settings of it).'),
    delethink: DelethinkSchema.prefault({}).describe('Chunked thinking (read when `rollout.context` is `delethink` or `longcot`).'),
    optim: OptimSchema.prefault({}).describe('Optimizer.'),
    engine: EngineSchema.prefault({}).describe("horizon's GPU engine (used when `backend` is auto on a GPU machine, or engine)."),
    sft: SftSchema.prefault({}).describe('Supervised warm start.'),
    train: TrainSchema.prefault({}).describe('Outer loop.'),
    workers: WorkersSchema.prefault({}).describe('Rollout workers started by `horizon train`.'),
    muzero: MuZeroSchema.prefault({}).describe('The mallocMuZero agent (read when `algorithm` is `muzero`; docs/mallocmuzero.md).'),
  })
  .strict();

/** The config as written (after defaults). */
export type RunConfigInput = z.input<typeof RunConfigSchema>;
export type ParsedRunConfig = z.output<typeof RunConfigSchema>;
