/**
 * Evaluation of a token policy on held-out tasks, in process (no queue): the run's own context policy
 * (multi-turn, fresh, Delethink, LongCoT) generates, the environment scores, and the environment's
 * optional `summarize` (e.g. TGC / SGC) and `baselines` (e.g. Mem-α readers) add their numbers.
 * For Delethink / LongCoT runs it also measures test-time scaling: traces are generated once with the
 * largest chunk cap asked for, then right-trimmed to each smaller thinking budget and scored again
 * (docs/delethink.md, "Tracing").
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../core/errors.js';
import { Rng, mixSeed } from '../core/rng.js';
import { resolveConfig, thinkingBudget, type ResolvedConfig } from '../configs/resolve.js';
import { loadEnvDefinition, validateEnvOptions } from '../envs/loader.js';
import type { EnvDefinition, EpisodeResult, Reward, TaskRef } from '../envs/types.js';
import { BOS_ID, BYTE_TOKENIZER_VOCAB_SIZE, ByteTokenizer, EOT_ID } from '../models/tokenizer.js';
import type { GenerationPolicy } from '../models/sampler.js';
import { TransformerPolicy, resolvePolicyConfig } from '../models/transformer.js';
import { listCheckpoints, loadCheckpoint } from './checkpoint.js';
import { finalWindowTokens, longCotTracing, type DelethinkTracing } from '../rollout/delethink.js';
import { runEpisodes, tracingOf } from '../rollout/runners.js';
import { segmentResponses, trimTraceToBudget } from './algorithms/delethink.js';
import type { Trajectory } from '../rollout/trajectory.js';

/** What to evaluate. */
export interface EvalOptions {
  /** Task split (default `test` when the env has it, else `eval`). */
  readonly split?: string;
  /** Evaluate the first n tasks of the split (default: all, at most 1000). */
  readonly tasks?: number;
  /** Episodes per task (default 1). */
  readonly samples?: number;
  /** Episodes generated together in one batched call (default 32). */
  readonly batchSize?: number;
  /** Delethink / LongCoT: chunk caps I′ whose thinking budgets are reported (default: the training I). */
  readonly chunks?: readonly number[];
  /** Also score the env's baselines on the same tasks. Default true. */
  readonly baselines?: boolean;
  /** Keep the first n episodes decoded (context and output of every turn / chunk) for inspection. */
  readonly show?: number;
  readonly log?: (line: string) => void;
}

/** Accuracy at one thinking budget (Delethink / LongCoT). */
export interface BudgetPoint {
  readonly chunks: number;
  /** Thinking budget in tokens: C + (I′ − 1)(C − m). */
  readonly budget: number;
  /** Share of traces whose answer, right-trimmed to the budget, is correct (reward.total ≥ 1). */
  readonly accuracy: number;
  readonly rewardMean: number;
}

/** Mean reward, success and summary metrics of one method on the evaluated tasks. */
export interface MethodScores {
  readonly episodes: number;
  readonly rewardMean: number;
  readonly successRate: number;
  readonly summary: Record<string, number>;
}

/** One decoded episode for inspection (`horizon eval --show`). */
export interface ShownEpisode {
  readonly task: TaskRef;
  readonly reward: Reward;
  readonly segments: ReadonlyArray<{ readonly context: string; readonly output: string }>;
}

export interface EvalResult {
  readonly split: string;
  readonly tasks: number;
  readonly policy: MethodScores & { readonly meanTokens: number; readonly meanTurns: number };
  readonly budgets?: readonly BudgetPoint[];
  /** The first `show` episodes, decoded: one entry per segment (turn / chunk), prompt and output apart. */
  readonly shown: readonly ShownEpisode[];
  /** LongCoT only: the thinking tokens its single context could hold, when smaller than the largest budget. */
  readonly contextCap?: number;
  readonly baselines: Record<string, MethodScores>;
  readonly wallSec: number;
}

const tokenizer = new ByteTokenizer();

/** Evaluate `policy` under `config`'s environment and context policy. */
export async function evaluatePolicy(policy: GenerationPolicy, config: ResolvedConfig, opts: EvalOptions = {}): Promise<EvalResult> {
  const started = Date.now();
  const log = opts.log ?? (() => {});
  const env = await loadEnvDefinition({ name: config.env.name, module: config.env.module }, config.derived.configDir);
  const options = validateEnvOptions(env, config.env.options);
  const split = opts.split ?? (env.taskCount('test', options) > 0 ? 'test' : 'eval');
  const available = env.taskCount(split, options);
  if (available === 0) throw new ConfigError(`environment ${env.name} has no tasks in split "${split}"`);
  const n = Math.min(opts.tasks ?? Math.min(available, 1000), available);
  const samples = opts.samples ?? 1;
  const tasks: TaskRef[] = Array.from({ length: n }, (_, index) => ({ split, index, seed: config.seed }));
  const thinking = config.rollout.context === 'delethink' || config.rollout.context === 'longcot';
  const chunkCaps = thinking ? [...new Set(opts.chunks ?? [config.delethink.maxChunks])].sort((a, b) => a - b) : [];
  if (chunkCaps.some((c) => !Number.isInteger(c) || c < 1))
    throw new ConfigError(`--chunks: chunk caps must be integers ≥ 1, got ${chunkCaps.join(', ')}`);
  const maxChunks = chunkCaps.at(-1);

  // LongCoT has one context: past model.maxSeqLen it cannot think further, so its traces are generated
  // up to what fits the longest query and trimmed from there (its accuracy plateaus beyond).
  let tracing = thinking ? tracingOf(config, maxChunks) : undefined;
  let contextCap: number | undefined;
  if (tracing && config.rollout.context === 'longcot') {
    const longestQuery = 1 + Math.max(...(await Promise.all(tasks.map((t) => promptLength(env, options, t)))));
    contextCap = config.model.maxSeqLen - longestQuery;
    if (tracing.chunkTokens > contextCap) {
      log(
        `eval: longcot traces capped at ${contextCap} tokens by model.maxSeqLen ${config.model.maxSeqLen} (budget asked: ${tracing.chunkTokens})`,
      );
      tracing = longCotTracing(contextCap);
    } else contextCap = undefined;
  }
  const members = tasks.flatMap((task) => Array.from({ length: samples }, () => task));
  const batchSize = opts.batchSize ?? 32;
  const episodes: { task: TaskRef; trajectory: Trajectory }[] = [];
  for (let start = 0; start < members.length; start += batchSize) {
    const batch = members.slice(start, start + batchSize);
    const outcome = await runEpisodes(
      policy,
      {
        env,
        envOptions: options,
        task: batch[0],
        memberTasks: batch,
        groupSize: batch.length,
        rngs: batch.map((_, k) => new Rng(mixSeed(config.seed, 0xe7a1, start + k))),
        rolloutIds: batch.map((t, k) => `eval/${t.split}/${t.index}/${String(start + k).padStart(6, '0')}`),
        groupId: `eval/${start}`,
        policyVersion: 0,
      },
      config,
      { tracing },
    );
    // Trajectories come back sorted by rollout id, which follows member order.
    outcome.trajectories.forEach((trajectory, k) => episodes.push({ task: batch[k], trajectory }));
    log(`eval: ${episodes.length}/${members.length} episodes (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }

  const results: EpisodeResult[] = episodes.map((e) => ({ task: e.task, reward: e.trajectory.reward }));
  const policyScores = {
    ...scoresOf(env, results, options),
    meanTokens: mean(episodes.map((e) => outputTokens(e.trajectory))),
    meanTurns: mean(episodes.map((e) => e.trajectory.turns)),
  };

  let budgets: BudgetPoint[] | undefined;
  if (thinking) {
    budgets = [];
    for (const chunks of chunkCaps) {
      const budget = thinkingBudget({ ...config.delethink, maxChunks: chunks });
      const rewards: number[] = [];
      for (const e of episodes)
        rewards.push((await scoreText(env, options, e.task, trimmedAnswerText(e.trajectory, budget, tracing!))).total);
      budgets.push({ chunks, budget, accuracy: mean(rewards.map((r) => (r >= 1 ? 1 : 0))), rewardMean: mean(rewards) });
    }
  }

  const baselines: Record<string, MethodScores> = {};
  if ((opts.baselines ?? true) && env.baselines) {
    const perMethod = new Map<string, EpisodeResult[]>();
    for (const task of tasks) {
      const scores = await env.baselines(task, options);
      for (const [name, reward] of Object.entries(scores)) perMethod.set(name, [...(perMethod.get(name) ?? []), { task, reward }]);
    }
    for (const [name, rs] of perMethod) baselines[name] = scoresOf(env, rs, options);
  }
  const shown = episodes
    .slice(0, opts.show ?? 0)
    .map((e) => ({ task: e.task, reward: e.trajectory.reward, segments: e.trajectory.segments.map(decodeSegment) }));
  return { split, tasks: n, policy: policyScores, budgets, contextCap, baselines, shown, wallSec: (Date.now() - started) / 1000 };
}

function scoresOf<Options>(env: EnvDefinition<Options>, results: readonly EpisodeResult[], options: Options): MethodScores {
  return {
    episodes: results.length,
    rewardMean: mean(results.map((r) => r.reward.total)),
    successRate: mean(results.map((r) => (r.reward.total >= 1 ? 1 : 0))),
    summary: env.summarize ? env.summarize(results, options) : meanParts(results.map((r) => r.reward)),
  };
}

/** Mean of each reward part over the results (the default summary). */
function meanParts(rewards: readonly Reward[]): Record<string, number> {
  const sums = new Map<string, number[]>();
  for (const r of rewards) for (const [k, v] of Object.entries(r.parts)) sums.set(k, [...(sums.get(k) ?? []), v]);
  return Object.fromEntries([...sums].map(([k, v]) => [k, mean(v)]));
}

/**
 * The text a trace's answer is read from when its thinking is right-trimmed to `budget` tokens: the
 * responses are cut at the budget, then the reward window of the (new) last chunk — its carryover and
 * response, as in training (`finalWindowTokens`) — is decoded. A trace cut before it wrote its answer
 * therefore scores 0.
 */
export function trimmedAnswerText(trajectory: Trajectory, budget: number, tracing: DelethinkTracing): string {
  const trimmed = trimTraceToBudget(segmentResponses(trajectory.segments), budget);
  return tokenizer.decode(
    finalWindowTokens(
      trimmed.responses.map((response) => ({ response })),
      tracing,
    ),
  );
}

/** A segment as text: the tokens before its first output token, and the rest (special tokens as <BOS>/<EOT>). */
function decodeSegment(segment: Trajectory['segments'][number]): { context: string; output: string } {
  const first = segment.isOutput.indexOf(1);
  const cut = first < 0 ? segment.tokens.length : first;
  const text = (ids: readonly number[]) =>
    ids.map((t) => (t === BOS_ID ? '<BOS>' : t === EOT_ID ? '<EOT>' : tokenizer.decode([t]))).join('');
  return { context: text(segment.tokens.slice(0, cut)), output: text(segment.tokens.slice(cut)) };
}

/** Tokens of a task's prompt (its query), from a fresh env instance. */
async function promptLength<Options>(env: EnvDefinition<Options>, options: Options, task: TaskRef): Promise<number> {
  const instance = await env.create(options);
  try {
    return tokenizer.encode(await instance.reset(task)).length;
  } finally {
    await instance.close?.();
  }
}

/** Score `text` as the final chunk of a trace for `task`, with a fresh env instance. */
async function scoreText<Options>(env: EnvDefinition<Options>, options: Options, task: TaskRef, text: string): Promise<Reward> {
  const instance = await env.create(options);
  try {
    await instance.reset(task);
    await instance.step(text);
    return await instance.score();
  } finally {
    await instance.close?.();
  }
}

function outputTokens(t: Trajectory): number {
  return t.segments.reduce((a, s) => a + s.isOutput.reduce<number>((b, m) => b + m, 0), 0);
}

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

/** The resolved config a run directory was trained with (its config.json), with `path=value` overrides. */
export function loadRunConfig(runDir: string, overrides: readonly string[] = []): ResolvedConfig {
  const file = path.join(runDir, 'config.json');
  if (!existsSync(file))
    throw new ConfigError(
      `${runDir} is not a run directory: it has no config.json (pass the directory \`horizon train\` wrote, e.g. runs/<job id>)`,
    );
  let saved: Record<string, unknown> & { derived?: { configDir?: string } };
  try {
    saved = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const { derived, ...raw } = saved;
  return resolveConfig(raw, { configDir: derived?.configDir, overrides });
}

/**
 * Load the policy of checkpoint `which` of a run: an iteration number, `last`, or a checkpoint directory
 * path. The checkpoint is verified (sha256 manifest) before its weights are used.
 */
export async function loadRunPolicy(
  runDir: string,
  config: ResolvedConfig,
  which: string,
): Promise<{ policy: TransformerPolicy; iteration: number; path: string }> {
  const dir = path.join(runDir, 'checkpoints');
  const entries = await listCheckpoints(dir);
  if (entries.length === 0) throw new ConfigError(`${runDir} has no checkpoints in ${dir}`);
  let entry = which === 'last' ? entries.at(-1) : entries.find((e) => String(e.iteration) === which || e.path === path.resolve(which));
  if (entry === undefined) {
    throw new ConfigError(`no checkpoint "${which}" in ${dir}; available: ${entries.map((e) => e.iteration).join(', ')} (or "last")`);
  }
  const loaded = await loadCheckpoint(entry.path);
  const policy = new TransformerPolicy(resolvePolicyConfig({ ...config.model, vocabSize: BYTE_TOKENIZER_VOCAB_SIZE }), config.seed, {
    scope: `eval${entry.iteration}`,
  });
  policy.setWeights(loaded.model);
  entry = { iteration: loaded.iteration, path: loaded.path };
  return { policy, iteration: entry.iteration, path: entry.path };
}
