/**
 * `memalpha` — the Mem-α memory-writer environment (Wang et al. 2025, arXiv 2509.25911; docs/memalpha.md).
 * Meant for the worker's `fresh` context mode: at each turn the policy sees only BOS + the latest
 * observation, so every chunk is its own training sample.
 *
 *   reset(task)      → prompt for chunk 1 (memory view + chunk 1)
 *   step(response)   → parse and run the calls; prompt for chunk t+1, or '' with done after the last chunk
 *   score()          → the reader answers every question from the final memory; r1..r4 per spec; total = r1
 *                      (QA accuracy, options.reward.total), turnRewards[t] = R_{j,t}
 *
 * Instances come from the built-in generators (four categories, seeded per task) or from Mem-α JSON/JSONL
 * files per split (`data`). Splits: `train`, `eval`, `test` and `test-long` (≥ 10× the training chunks).
 */
import { z } from 'zod';
import { ConfigError, EnvError } from '../../core/errors.js';
import { Rng, mixSeed } from '../../core/rng.js';
import { memalphaReward, QA_METRICS, type QaMetric } from '../../rewards/memalpha.js';
import type { Demonstration, Env, EnvDefinition, Reward, StepResult, TaskRef } from '../types.js';
import { baselineScores, evaluateMemory, meanScore, type BaselineKind, type QuestionScore } from './baselines.js';
import { generateInstance } from './data/generate.js';
import { loadInstancesFile } from './data/load.js';
import { callOutcomes, contentItems, WriterEpisode, type ChunkRecord, type EpisodeOptions } from './episode.js';
import { runHeuristicWriter, type DemonstrationTurn } from './heuristic.js';
import { LlmAnswerJudge, LlmContentJudge, RuleContentJudge, type AnswerJudge, type ContentJudge } from './judge.js';
import type { ChatEndpoint } from './openai.js';
import { ExtractiveReader, LlmReader, type Reader } from './reader.js';
import { memoryTokens } from './store.js';
import { countTokens } from './tokens.js';
import { CATEGORIES, type MemalphaInstance, type MemorySnapshot } from './types.js';

// ─── Options ──────────────────────────────────────────────────────────────────────────────────────────

/** The splits this environment has. */
export const MEMALPHA_SPLITS = ['train', 'eval', 'test', 'test-long'] as const;

const EndpointSchema = z
  .object({
    baseUrl: z
      .string()
      .min(1)
      .describe(
        'Base URL of an OpenAI-compatible API including the version, e.g. `http://127.0.0.1:8000/v1`; requests go to `{baseUrl}/chat/completions`.',
      ),
    model: z.string().min(1).describe('Model name sent with every request.'),
    apiKeyEnv: z
      .string()
      .min(1)
      .optional()
      .describe('Name of the environment variable holding the API key (sent as a Bearer token); omit for servers without keys.'),
    timeoutMs: z.number().int().min(100).max(600_000).default(30_000).describe('Timeout of one request in milliseconds.'),
    retries: z
      .number()
      .int()
      .min(0)
      .max(10)
      .default(2)
      .describe('Retries of a request after a transient failure (network, timeout, 408, 429, 5xx).'),
    retryDelayMs: z.number().int().min(0).max(60_000).default(500).describe('Backoff before retry r is retryDelayMs · 2^r.'),
    maxTokens: z.number().int().min(1).max(32_768).default(256).describe('`max_tokens` of each completion.'),
    temperature: z
      .number()
      .min(0)
      .max(2)
      .default(0)
      .describe('Sampling temperature of the endpoint (0 keeps reader and judge deterministic).'),
    concurrency: z.number().int().min(1).max(256).default(4).describe('Requests in flight at once.'),
  })
  .strict();

const SplitSizesSchema = z
  .object({
    train: z.number().int().min(0).default(100_000).describe('Generated training instances.'),
    eval: z.number().int().min(0).default(256).describe('Generated evaluation instances (same length as train).'),
    test: z.number().int().min(0).default(256).describe('Generated held-out test instances (same length as train).'),
    'test-long': z.number().int().min(0).default(64).describe('Generated held-out instances with `generator.longChunks` chunks.'),
  })
  .strict();

/** `env.options` of `memalpha`. */
export const memalphaOptionsSchema = z
  .object({
    categories: z
      .array(z.enum(CATEGORIES))
      .min(1)
      .default([...CATEGORIES])
      .describe(
        'Generated categories, cycled by task index: ar (accurate retrieval), ttl (test-time learning), lru (long-range understanding), cr (conflict resolution).',
      ),
    splits: SplitSizesSchema.prefault({}).describe('Instances per split of the generated data.'),
    data: z
      .partialRecord(z.enum(MEMALPHA_SPLITS), z.string().min(1))
      .default({})
      .describe(
        'Mem-α JSON/JSONL file per split (path relative to the working directory of every process); a split with a file uses it instead of generated data.',
      ),
    metrics: z
      .record(z.string(), z.enum(QA_METRICS as [QaMetric, ...QaMetric[]]))
      .default({})
      .describe('QA metric per data source, over the built-in table (squad → substring, booksum → keyword_hit, …).'),
    generator: z
      .object({
        chunks: z.number().int().min(1).max(1000).default(4).describe('Chunks per instance in train, eval and test.'),
        longChunks: z.number().int().min(1).max(10_000).default(40).describe('Chunks per instance in test-long (at least 10× `chunks`).'),
        maxChunkTokens: z
          .number()
          .int()
          .min(64)
          .max(100_000)
          .default(256)
          .describe('Upper bound on a chunk in tokens (bytes); filler is added only while it fits.'),
        factsPerChunk: z.number().int().min(1).max(50).default(2).describe('ar / cr: facts (or changes) per chunk.'),
        fillerPerChunk: z
          .number()
          .int()
          .min(0)
          .max(50)
          .default(2)
          .describe('ar / cr / lru: filler sentences per chunk (difficulty: noise around the facts).'),
        questionsPerInstance: z
          .number()
          .int()
          .min(1)
          .max(200)
          .default(4)
          .describe('Questions per instance (lru: always one summary question).'),
        classes: z.number().int().min(2).max(8).default(3).describe('ttl: classes.'),
        examplesPerChunk: z.number().int().min(1).max(50).default(3).describe('ttl: labelled examples per chunk.'),
        exampleWords: z.number().int().min(2).max(20).default(4).describe('ttl: words per example.'),
        labelNoise: z
          .number()
          .min(0)
          .max(1)
          .default(0.3)
          .describe('ttl: probability that an example word (after the first) is a shared noise word.'),
        eventsPerChunk: z.number().int().min(1).max(20).default(1).describe('lru: story events per chunk.'),
        changeFraction: z.number().min(0).max(1).default(0.5).describe('cr: probability that a fact changes in a later chunk.'),
        changeDelay: z.number().int().min(1).max(100).default(2).describe('cr: a change comes 1..changeDelay chunks after its fact.'),
      })
      .strict()
      .prefault({})
      .refine((g) => g.longChunks >= 10 * g.chunks, {
        message: 'generator.longChunks must be at least 10 × generator.chunks (test-long is for lengths far beyond training)',
      })
      .describe('Generated data and its difficulty knobs.'),
    memory: z
      .object({
        coreTokenCap: z
          .number()
          .int()
          .min(32)
          .max(100_000)
          .default(512)
          .describe('Core cap in tokens (spec: 512); longer rewrites are cut at a word with a truncation notice.'),
        idScheme: z
          .enum(['sequential', 'random'])
          .default('sequential')
          .describe('Entry ids: `sequential` (s1, e1, … short to copy) or `random` (4 hex digits as in the original, seeded).'),
      })
      .strict()
      .prefault({})
      .describe('The memory.'),
    prompt: z
      .object({
        maxPromptTokens: z
          .number()
          .int()
          .min(128)
          .max(1_000_000)
          .default(1024)
          .describe('Upper bound on a chunk prompt in tokens; the memory view shrinks ("showing k of N") to fit, then the chunk is cut.'),
        viewEntries: z
          .number()
          .int()
          .min(0)
          .max(100)
          .default(5)
          .describe('Most recent entries of each list shown to the writer (spec: 5).'),
        callSyntax: z
          .enum(['line', 'json'])
          .default('line')
          .describe(
            'Tool-call syntax the prompt describes and demonstrations use (`line`: `insert semantic: TEXT`; `json`: the original JSON). Both are always parsed.',
          ),
        instructions: z
          .boolean()
          .default(true)
          .describe('Start each prompt with a short tool description (off saves ~200 tokens for a writer trained on demonstrations).'),
      })
      .strict()
      .prefault({})
      .describe('The writer prompt.'),
    reader: z
      .object({
        kind: z
          .enum(['bm25', 'llm'])
          .default('bm25')
          .describe(
            '`bm25`: built-in extractive reader over BM25 retrieval (deterministic); `llm`: an OpenAI-compatible endpoint answers from the same retrieval.',
          ),
        topK: z.number().int().min(1).max(1000).default(20).describe('Entries retrieved per list per question (spec: 20).'),
        endpoint: EndpointSchema.optional().describe('The reader endpoint (needed when kind is `llm`).'),
      })
      .strict()
      .prefault({})
      .refine((r) => r.kind !== 'llm' || r.endpoint !== undefined, { message: 'reader.kind llm needs reader.endpoint (baseUrl, model)' })
      .describe('The frozen reader.'),
    judge: z
      .object({
        kind: z
          .enum(['rules', 'llm'])
          .default('rules')
          .describe('Judge of written content (r4) and of `llm_judge` answers: `rules` (built-in) or `llm` (endpoint).'),
        endpoint: EndpointSchema.optional().describe('The judge endpoint (needed when kind is `llm`).'),
      })
      .strict()
      .prefault({})
      .refine((j) => j.kind !== 'llm' || j.endpoint !== undefined, { message: 'judge.kind llm needs judge.endpoint (baseUrl, model)' })
      .describe('The judge.'),
    reward: z
      .object({
        beta: z.number().min(0).max(10).default(0.05).describe('β, weight of r3 compression (paper 0.05; ablations 0, 0.2, 0.4).'),
        gamma: z.number().min(0).max(10).default(0.1).describe('γ, weight of r4 content validity (paper 0.1; ablation 0).'),
        scoreDeletes: z.boolean().default(false).describe('Score a successful delete 1 in r4 (the original scores deletes 0).'),
        total: z
          .enum(['r1', 'mean-turn'])
          .default('r1')
          .describe('Episode total: `r1` (QA accuracy in [0, 1]) or `mean-turn` (mean of the per-chunk rewards).'),
      })
      .strict()
      .prefault({})
      .describe('Reward R = r1 + r2 + β·r3 + γ·r4 per chunk.'),
    baselines: z
      .object({
        contextTokens: z
          .number()
          .int()
          .min(16)
          .max(10_000_000)
          .default(2048)
          .describe('long-context baseline: tokens of the raw input’s tail the reader sees.'),
        ragTopK: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(2)
          .describe('rag-top-k baseline: raw chunks retrieved with BM25 (paper: RAG-top2).'),
      })
      .strict()
      .prefault({})
      .describe('Baselines scored with the same reader and metrics.'),
    demo: z
      .object({
        noise: z
          .number()
          .min(0)
          .max(1)
          .default(0.1)
          .describe(
            'Scripted writer: probability per sentence of a weaker writer’s mistake (drop a fact, store a change raw, store filler).',
          ),
      })
      .strict()
      .prefault({})
      .describe('Demonstrations for the supervised warm start.'),
  })
  .strict()
  .refine((o) => o.memory.coreTokenCap + 128 <= o.prompt.maxPromptTokens, {
    message: 'prompt.maxPromptTokens must exceed memory.coreTokenCap by at least 128 tokens (the full core is always shown)',
  });

/** Parsed `memalpha` options. */
export type MemalphaOptions = z.output<typeof memalphaOptionsSchema>;

// ─── Tasks ────────────────────────────────────────────────────────────────────────────────────────────

const INSTANCE_STREAM = 1;
const ID_STREAM = 2;
const DEMO_STREAM = 3;

/** Instances in `split`: the data file's count when one is set, else the generated size; 0 for unknown splits. */
export function memalphaTaskCount(split: string, options: MemalphaOptions): number {
  if (!isSplit(split)) return 0;
  const file = options.data[split];
  if (file !== undefined) return loadInstancesFile(file).length;
  return options.splits[split];
}

/** The instance behind a task (a data file's line, or a generated instance seeded by (split, index, seed)). */
export function memalphaInstance(task: TaskRef, options: MemalphaOptions): MemalphaInstance {
  checkTask(task, options);
  const split = task.split as (typeof MEMALPHA_SPLITS)[number];
  const file = options.data[split];
  if (file !== undefined) return loadInstancesFile(file)[task.index];
  const category = options.categories[task.index % options.categories.length];
  const chunks = split === 'test-long' ? options.generator.longChunks : options.generator.chunks;
  return generateInstance({ category, chunks, seed: taskSeed(task, INSTANCE_STREAM), label: `${split}/${task.index}` }, options.generator);
}

/** The episode options of a task (its id seed included, so replays reproduce ids). */
export function memalphaEpisodeOptions(task: TaskRef, options: MemalphaOptions): EpisodeOptions {
  return {
    memory: { coreTokenCap: options.memory.coreTokenCap, idScheme: options.memory.idScheme, idSeed: taskSeed(task, ID_STREAM) },
    prompt: options.prompt,
  };
}

// ─── The environment ──────────────────────────────────────────────────────────────────────────────────

/** The reader, content judge and answer judge an env uses. */
export interface MemalphaServices {
  readonly reader: Reader;
  readonly contentJudge: ContentJudge;
  /** For `llm_judge` sources; absent → substring match. */
  readonly answerJudge?: AnswerJudge;
}

/** The services `options` ask for (built-in reader and rule judge by default). */
export function memalphaServices(options: MemalphaOptions): MemalphaServices {
  const reader = options.reader.kind === 'llm' ? new LlmReader(endpointOf(options.reader.endpoint)) : new ExtractiveReader();
  if (options.judge.kind === 'llm') {
    const endpoint = endpointOf(options.judge.endpoint);
    return { reader, contentJudge: new LlmContentJudge(endpoint), answerJudge: new LlmAnswerJudge(endpoint) };
  }
  return { reader, contentJudge: new RuleContentJudge() };
}

/** What `score()` found, kept for inspection (evaluation harnesses, tests). */
export interface MemalphaScoreDetail {
  readonly reward: Reward;
  readonly questions: readonly QuestionScore[];
  readonly memory: MemorySnapshot;
}

/** One Mem-α writer episode. Malformed responses become failed calls; nothing the writer writes throws. */
export class MemalphaEnv implements Env {
  private episode: WriterEpisode | undefined;
  private scoring: Promise<MemalphaScoreDetail> | undefined;

  constructor(
    readonly options: MemalphaOptions,
    readonly services: MemalphaServices = memalphaServices(options),
  ) {}

  reset(task: TaskRef): string {
    this.episode = new WriterEpisode(memalphaInstance(task, this.options), memalphaEpisodeOptions(task, this.options));
    this.scoring = undefined;
    return this.episode.currentPrompt().text;
  }

  step(action: string): StepResult {
    const episode = this.requireEpisode('step');
    if (episode.done) throw new EnvError('memalpha: step() called after the last chunk (done was true); create a fresh env per episode');
    if (this.scoring !== undefined) throw new EnvError('memalpha: step() called after score()');
    episode.apply(typeof action === 'string' ? action : '');
    return episode.done ? { observation: '', done: true } : { observation: episode.currentPrompt().text, done: false };
  }

  async score(): Promise<Reward> {
    return (await this.scoreDetail()).reward;
  }

  /** The reward with the reader's answers and the final memory (computed once per episode). */
  scoreDetail(): Promise<MemalphaScoreDetail> {
    this.scoring ??= this.computeScore(this.requireEpisode('score'));
    return this.scoring;
  }

  /** The episode so far (per-chunk records, memory, logged calls). */
  writerEpisode(): WriterEpisode {
    return this.requireEpisode('writerEpisode');
  }

  private async computeScore(episode: WriterEpisode): Promise<MemalphaScoreDetail> {
    const memory = episode.memory();
    const records = episode.records();
    const [questions, validities] = await Promise.all([
      evaluateMemory(episode.instance, memory, this.services.reader, {
        topK: this.options.reader.topK,
        metrics: this.options.metrics,
        answerJudge: this.services.answerJudge,
      }),
      this.services.contentJudge.judge(contentItems(records)),
    ]);
    const reward = memalphaReward(
      {
        source: episode.instance.source,
        chunks: callOutcomes(records, validities),
        qaScores: questions.map((q) => q.score),
        memoryTokens: memoryTokens(memory),
        inputTokens: episode.inputTokens(),
      },
      this.options.reward,
    );
    return { reward: withMemoryParts(reward, memory, records), questions, memory };
  }

  private requireEpisode(method: string): WriterEpisode {
    if (this.episode === undefined) throw new EnvError(`memalpha: ${method}() called before reset()`);
    return this.episode;
  }
}

/** Extra parts: memory shape and how often the prompt had to shrink. */
function withMemoryParts(reward: Reward, memory: MemorySnapshot, records: readonly ChunkRecord[]): Reward {
  return {
    ...reward,
    parts: {
      ...reward.parts,
      semantic_entries: memory.semantic.length,
      episodic_entries: memory.episodic.length,
      core_tokens: countTokens(memory.core),
      chunks_cut: records.filter((r) => r.chunkTokensDropped > 0).length,
    },
  };
}

// ─── Baselines ────────────────────────────────────────────────────────────────────────────────────────

/** The baselines of an evaluation: raw-input readers, and the scripted writer's memory. */
export type MemalphaBaseline = BaselineKind | 'heuristic';

/** Every baseline, in report order. */
export const MEMALPHA_BASELINES: readonly MemalphaBaseline[] = ['long-context', 'rag-top-k', 'heuristic'];

/**
 * Score `task` under a baseline with the reader and judge of `options`: `long-context` (the last
 * `baselines.contextTokens` tokens of the raw input), `rag-top-k` (the `baselines.ragTopK` best raw chunks by
 * BM25) or `heuristic` (the scripted writer's memory, at `demo.noise`). `r1` is the mean question score —
 * the same number as a writer's `parts.r1` on that task.
 */
export async function memalphaBaseline(
  task: TaskRef,
  options: MemalphaOptions,
  kind: MemalphaBaseline,
  services: MemalphaServices = memalphaServices(options),
): Promise<{ r1: number; questions: QuestionScore[] }> {
  const instance = memalphaInstance(task, options);
  const evaluation = { topK: options.reader.topK, metrics: options.metrics, answerJudge: services.answerJudge };
  let questions: QuestionScore[];
  if (kind === 'heuristic') {
    const { memory } = runHeuristicWriter(
      instance,
      memalphaEpisodeOptions(task, options),
      new Rng(taskSeed(task, DEMO_STREAM)),
      options.demo.noise,
    );
    questions = await evaluateMemory(instance, memory, services.reader, evaluation);
  } else {
    questions = await baselineScores(instance, kind, services.reader, { ...evaluation, ...options.baselines });
  }
  return { r1: meanScore(questions), questions };
}

// ─── Demonstrations ───────────────────────────────────────────────────────────────────────────────────

/**
 * The scripted writer's episode on `task`, one {prompt, response} per chunk: each prompt is exactly what
 * the environment shows after the writer's earlier calls (fresh-context SFT rows).
 */
export function memalphaDemonstrationTurns(task: TaskRef, options: MemalphaOptions): DemonstrationTurn[] {
  const instance = memalphaInstance(task, options);
  const rng = new Rng(taskSeed(task, DEMO_STREAM));
  return runHeuristicWriter(instance, memalphaEpisodeOptions(task, options), rng, options.demo.noise).turns;
}

/** The same episode as alternating env / policy turns (prompt, response, prompt, …, last response). */
export function memalphaDemonstration(task: TaskRef, options: MemalphaOptions): Demonstration {
  return {
    turns: memalphaDemonstrationTurns(task, options).flatMap((turn) => [
      { role: 'env' as const, text: turn.prompt },
      { role: 'policy' as const, text: turn.response },
    ]),
  };
}

/** The built-in definition registered as `memalpha`. */
export const memalphaEnv: EnvDefinition<MemalphaOptions> = {
  name: 'memalpha',
  description: 'Mem-α: write core / semantic / episodic memory chunk by chunk; a frozen reader answers questions from it.',
  optionsSchema: memalphaOptionsSchema,
  taskCount: memalphaTaskCount,
  create: (options) => new MemalphaEnv(checkOptions(options)),
  demonstrations: memalphaDemonstration,
  /** Long-context, RAG-top-k and the scripted writer, scored like a writer (`qa/<source>` = r1 per category). */
  async baselines(task, options) {
    const services = memalphaServices(options);
    const source = memalphaInstance(task, options).source;
    const out: Record<string, Reward> = {};
    for (const kind of MEMALPHA_BASELINES) {
      const { r1 } = await memalphaBaseline(task, options, kind, services);
      out[kind] = { total: r1, parts: { r1, [`qa/${source}`]: r1 } };
    }
    return out;
  },
};

// ─── helpers ──────────────────────────────────────────────────────────────────────────────────────────

function endpointOf(endpoint: z.output<typeof EndpointSchema> | undefined): ChatEndpoint {
  if (endpoint === undefined) throw new ConfigError('memalpha: an llm reader or judge needs an endpoint (baseUrl, model)');
  return endpoint;
}

function isSplit(split: string): split is (typeof MEMALPHA_SPLITS)[number] {
  return (MEMALPHA_SPLITS as readonly string[]).includes(split);
}

/** FNV-1a hash of the split name, so each split gets its own seed space. */
function splitHash(split: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < split.length; i++) {
    h ^= split.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function taskSeed(task: TaskRef, stream: number): number {
  return mixSeed(splitHash(task.split), task.index, task.seed, stream);
}

function checkTask(task: TaskRef, options: MemalphaOptions): void {
  const count = memalphaTaskCount(task.split, options);
  if (count === 0) {
    throw new ConfigError(
      `memalpha has no tasks in split '${task.split}'; splits: ${MEMALPHA_SPLITS.map((s) => `${s} (${memalphaTaskCount(s, options)})`).join(', ')}`,
    );
  }
  if (!Number.isInteger(task.index) || task.index < 0 || task.index >= count) {
    throw new ConfigError(`memalpha: task index ${task.index} is outside split '${task.split}' (0..${count - 1})`);
  }
}

/** Options reach `create` already parsed; re-check so a hand-built object cannot break the invariants. */
function checkOptions(options: MemalphaOptions): MemalphaOptions {
  const parsed = memalphaOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${['env', 'options', ...issue.path].join('.')}: ${issue.message}`);
    throw new ConfigError(`memalpha: invalid options (${issues.join('; ')}); parse them with validateEnvOptions first`);
  }
  return parsed.data;
}
