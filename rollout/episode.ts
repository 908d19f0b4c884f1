/**
 * Running a group: the K episodes of one task, concurrently, with one batched generation call per agent
 * turn across every episode still running. Token-in/token-out: policy tokens are kept exactly as sampled,
 * environment text is tokenised once when it arrives.
 */
import type { Demonstration, Env, EnvDefinition, Reward, TaskRef } from '../envs/types.js';
import { EnvError } from '../core/errors.js';
import type { ResolvedConfig } from '../configs/resolve.js';
import { Rng } from '../core/rng.js';
import { BOS_ID as BOS, EOT_ID as EOT, ByteTokenizer } from '../models/tokenizer.js';
import { type GenerationRequest, generateWith, type GenerationPolicy } from '../models/sampler.js';
import type { FinishReason, Segment, Trajectory } from './trajectory.js';

/** Caps of one episode, in tokens and turns. */
export interface EpisodeLimits {
  readonly maxTurns: number;
  readonly maxTokensPerTurn: number;
  readonly maxObservationTokens: number;
  /** Total context cap: the episode ends when the next turn could overflow it. */
  readonly maxContextTokens: number;
  readonly temperature: number;
  /** Whether the sampled end-of-turn token counts as a policy token (isOutput = 1). */
  readonly trainOnEndOfTurn: boolean;
  /** Fresh-env retries per episode before the whole group fails. */
  readonly episodeRetries: number;
  /**
   * `multi-turn`: each turn sees the whole episode so far (one segment). `fresh`: each turn sees only BOS
   * and the latest observation; every turn is its own segment (Mem-α's per-chunk samples). Default multi-turn.
   */
  readonly context?: 'multi-turn' | 'fresh';
}

/** The episode caps of a run, from its resolved config (the one place that maps config → limits). */
export function episodeLimits(config: ResolvedConfig): EpisodeLimits {
  const { rollout } = config;
  return {
    maxTurns: rollout.maxTurns,
    maxTokensPerTurn: rollout.maxTokensPerTurn,
    maxObservationTokens: rollout.maxObservationTokens,
    maxContextTokens: config.derived.maxContextTokens,
    temperature: rollout.temperature,
    trainOnEndOfTurn: rollout.trainOnEndOfTurn,
    episodeRetries: rollout.episodeRetries,
    context: rollout.context === 'fresh' ? 'fresh' : 'multi-turn',
  };
}

/** Everything `runGroup` needs besides the policy. */
export interface GroupSpec<Options = unknown> {
  readonly env: EnvDefinition<Options>;
  readonly envOptions: Options;
  readonly task: TaskRef;
  /** Optional task of each member (length groupSize), overriding `task`: evaluation batches many tasks. */
  readonly memberTasks?: readonly TaskRef[];
  readonly groupSize: number;
  readonly limits: EpisodeLimits;
  /** Per-member random streams (sampling). */
  readonly rngs: readonly Rng[];
  readonly rolloutIds: readonly string[];
  readonly groupId: string;
  readonly policyVersion: number;
  /** Polled once per turn; true cancels every episode still running (straggler early stop). */
  readonly shouldStop?: () => Promise<boolean> | boolean;
  /** Called when a member finishes (not when cancelled). */
  readonly onFinished?: (k: number) => Promise<void> | void;
}

/** What `runGroup` returns. Cancelled members are listed, not scored. */
export interface GroupOutcome {
  readonly trajectories: Trajectory[];
  readonly cancelled: number[];
  readonly generatedTokens: number;
}

const tokenizer = new ByteTokenizer();

interface LiveEpisode {
  readonly k: number;
  env: Env;
  /** Finished turns' segments in `fresh` context (each turn its own context); empty in multi-turn. */
  closed: Segment[];
  tokens: number[];
  isOutput: (0 | 1)[];
  logProbs: number[];
  turn: number[];
  turns: number;
  retries: number;
  startedAt: number;
  finish?: FinishReason;
}

/** Note appended where an observation was cut to `maxObservationTokens`. */
export function truncationNote(dropped: number): string {
  return `\n[observation truncated: ${dropped} more tokens]\n`;
}

/** Tokenise an observation, truncating it to `maxTokens` with a note that says how much was dropped. */
export function observationTokens(text: string, maxTokens: number): number[] {
  const ids = tokenizer.encode(text);
  if (ids.length <= maxTokens) return ids;
  const note = tokenizer.encode(truncationNote(ids.length - maxTokens));
  const keep = Math.max(0, maxTokens - note.length);
  return [...ids.slice(0, keep), ...note].slice(0, maxTokens);
}

/** Run the K episodes of a group to completion (or cancellation) with batched generation. */
export async function runGroup<Options>(policy: GenerationPolicy, spec: GroupSpec<Options>): Promise<GroupOutcome> {
  const { limits } = spec;
  if (limits.maxContextTokens > policy.config.maxSeqLen) {
    throw new RangeError(`maxContextTokens ${limits.maxContextTokens} exceeds the model's maxSeqLen ${policy.config.maxSeqLen}`);
  }
  const episodes: LiveEpisode[] = [];
  for (let k = 0; k < spec.groupSize; k++) episodes.push(await startEpisode(spec, k, 0));
  const trajectories: Trajectory[] = [];
  const cancelled: number[] = [];
  let generatedTokens = 0;

  for (;;) {
    const active = episodes.filter((e) => e.finish === undefined);
    if (active.length === 0) break;
    if (spec.shouldStop && (await spec.shouldStop())) {
      for (const e of active) {
        e.finish = 'cancelled';
        cancelled.push(e.k);
        await closeQuietly(e.env);
      }
      break;
    }
    // One batched generation step per agent turn for every running episode.
    const requests: GenerationRequest[] = active.map((e) => ({
      context: e.tokens,
      maxNewTokens: limits.maxTokensPerTurn,
      rng: spec.rngs[e.k],
    }));
    const results = await generateWith(policy, requests, { temperature: limits.temperature, stopTokens: [EOT] });
    for (let i = 0; i < active.length; i++) {
      const e = active[i];
      const result = results[i];
      generatedTokens += result.tokens.length;
      for (let j = 0; j < result.tokens.length; j++) {
        const token = result.tokens[j];
        const counts = token !== EOT || limits.trainOnEndOfTurn;
        e.tokens.push(token);
        e.isOutput.push(counts ? 1 : 0);
        e.logProbs.push(counts ? result.logProbs[j] : 0);
        e.turn.push(e.turns);
      }
      e.turns += 1;
      const action = tokenizer.decode(result.tokens.filter((t) => t !== EOT));
      let finished: FinishReason | undefined;
      try {
        const step = await e.env.step(action);
        if (limits.context === 'fresh') {
          // The turn's context ends here; the next turn starts from BOS and the new observation alone.
          if (!step.done && e.turns < limits.maxTurns) {
            e.closed.push(currentSegment(e));
            resetContext(e, freshContext(step.observation, limits));
          }
        } else {
          const room = limits.maxContextTokens - e.tokens.length;
          const obs = observationTokens(step.observation, Math.min(limits.maxObservationTokens, Math.max(0, room)));
          for (const t of obs) {
            e.tokens.push(t);
            e.isOutput.push(0);
            e.logProbs.push(0);
            e.turn.push(e.turns - 1);
          }
        }
        if (step.done) finished = 'done';
        else if (e.turns >= limits.maxTurns) finished = 'max_turns';
        else if (e.tokens.length + limits.maxTokensPerTurn > limits.maxContextTokens) finished = 'max_context';
      } catch (err) {
        await replaceAfterFailure(spec, episodes, e, err);
        continue;
      }
      if (finished !== undefined) {
        let reward: Reward;
        try {
          reward = await e.env.score();
          checkReward(reward);
        } catch (err) {
          await replaceAfterFailure(spec, episodes, e, err);
          continue;
        }
        e.finish = finished;
        await closeQuietly(e.env);
        trajectories.push(toTrajectory(spec, e, reward, finished));
        await spec.onFinished?.(e.k);
      }
    }
  }
  trajectories.sort((a, b) => a.rolloutId.localeCompare(b.rolloutId));
  return { trajectories, cancelled: cancelled.sort((a, b) => a - b), generatedTokens };
}

async function startEpisode<Options>(spec: GroupSpec<Options>, k: number, retries: number): Promise<LiveEpisode> {
  let env: Env | undefined;
  try {
    env = await spec.env.create(spec.envOptions);
    const prompt = await env.reset(spec.memberTasks?.[k] ?? spec.task);
    const tokens =
      spec.limits.context === 'fresh'
        ? freshContext(prompt, spec.limits)
        : [BOS, ...observationTokens(prompt, spec.limits.maxObservationTokens)];
    if (tokens.length + spec.limits.maxTokensPerTurn > spec.limits.maxContextTokens) {
      throw new EnvError(
        `the task prompt (${tokens.length} tokens) leaves no room for a ${spec.limits.maxTokensPerTurn}-token turn within maxContextTokens ${spec.limits.maxContextTokens}`,
      );
    }
    return {
      k,
      env,
      closed: [],
      tokens,
      isOutput: tokens.map(() => 0),
      logProbs: tokens.map(() => 0),
      turn: tokens.map(() => -1),
      turns: 0,
      retries,
      startedAt: Date.now(),
    };
  } catch (err) {
    if (env) await closeQuietly(env);
    if (retries < spec.limits.episodeRetries) return startEpisode(spec, k, retries + 1);
    throw groupFailure(spec, k, err);
  }
}

/** A failed episode restarts with a fresh env; when its retries run out the whole group fails. */
async function replaceAfterFailure<Options>(
  spec: GroupSpec<Options>,
  episodes: LiveEpisode[],
  failed: LiveEpisode,
  err: unknown,
): Promise<void> {
  await closeQuietly(failed.env);
  if (failed.retries >= spec.limits.episodeRetries) throw groupFailure(spec, failed.k, err);
  const fresh = await startEpisode(spec, failed.k, failed.retries + 1);
  episodes[episodes.indexOf(failed)] = fresh;
}

function groupFailure<Options>(spec: GroupSpec<Options>, k: number, err: unknown): EnvError {
  const reason = err instanceof Error ? err.message : String(err);
  return new EnvError(
    `episode ${k} of group ${spec.groupId} (${spec.env.name}, task ${spec.task.split}#${spec.task.index}) failed after ${spec.limits.episodeRetries} retries: ${reason}`,
    { cause: err, context: { groupId: spec.groupId, k } },
  );
}

function checkReward(reward: Reward): void {
  if (typeof reward !== 'object' || reward === null || !Number.isFinite(reward.total)) {
    throw new EnvError(`score() must return { total: finite number, parts }, got ${JSON.stringify(reward)}`);
  }
}

/**
 * The context of a `fresh` turn: BOS and the observation, truncated (with a note) so that a full turn of
 * `maxTokensPerTurn` still fits `maxContextTokens`.
 */
function freshContext(observation: string, limits: EpisodeLimits): number[] {
  const room = Math.max(0, limits.maxContextTokens - 1 - limits.maxTokensPerTurn);
  return [BOS, ...observationTokens(observation, Math.min(limits.maxObservationTokens, room))];
}

function currentSegment(e: LiveEpisode): Segment {
  return { tokens: e.tokens, isOutput: e.isOutput, logProbs: e.logProbs, turn: e.turn };
}

function resetContext(e: LiveEpisode, tokens: number[]): void {
  e.tokens = tokens;
  e.isOutput = tokens.map(() => 0);
  e.logProbs = tokens.map(() => 0);
  e.turn = tokens.map(() => e.turns - 1);
}

function toTrajectory<Options>(spec: GroupSpec<Options>, e: LiveEpisode, reward: Reward, finishReason: FinishReason): Trajectory {
  return {
    rolloutId: spec.rolloutIds[e.k],
    groupId: spec.groupId,
    policyVersion: spec.policyVersion,
    segments: [...e.closed, currentSegment(e)],
    reward: {
      total: reward.total,
      parts: { ...reward.parts },
      ...(reward.turnRewards !== undefined ? { turnRewards: [...reward.turnRewards] } : {}),
    },
    finishReason,
    turns: e.turns,
    retries: e.retries,
    wallMs: Date.now() - e.startedAt,
  };
}

async function closeQuietly(env: Env): Promise<void> {
  try {
    await env.close?.();
  } catch {
    // Closing is best effort; the episode's result does not depend on it.
  }
}

/**
 * The training segments of a demonstration as the run's context policy would see it: one segment
 * (`demonstrationSegment`) in multi-turn context, one per (observation, policy turn) pair in `fresh` context.
 */
export function demonstrationSegments(
  demo: Demonstration,
  limits: Pick<EpisodeLimits, 'maxObservationTokens' | 'maxContextTokens' | 'trainOnEndOfTurn' | 'maxTokensPerTurn' | 'context'>,
): Segment[] {
  if (limits.context !== 'fresh') return [demonstrationSegment(demo, limits)];
  // Fresh context: each (observation, policy turn) pair is its own sample, seen exactly as a live turn is.
  const out: Segment[] = [];
  let observation: string | undefined;
  for (const part of demo.turns) {
    if (part.role === 'env') observation = part.text;
    else if (observation !== undefined) {
      const context = freshContext(observation, { ...limits, temperature: 1, maxTurns: 1, episodeRetries: 0 });
      const seg = demonstrationSegment(
        { turns: [{ role: 'policy', text: part.text }] },
        { ...limits, maxContextTokens: limits.maxContextTokens - context.length + 1 },
      );
      // demonstrationSegment starts with its own BOS; splice the context (which has one) in front of the turn.
      out.push({
        tokens: [...context, ...seg.tokens.slice(1)],
        isOutput: [...context.map(() => 0 as const), ...seg.isOutput.slice(1)],
        logProbs: [...context.map(() => 0), ...seg.logProbs.slice(1)],
        turn: [...context.map(() => out.length - 1), ...seg.turn.slice(1).map(() => out.length)],
      });
      observation = undefined;
    }
  }
  return out;
}

/**
 * Tokenise a scripted demonstration exactly as a live episode would be: BOS, the prompt and every
 * environment reply as non-policy tokens (truncated the same way), each policy turn as output tokens
 * followed by EOT. Stops before a turn that would overflow `maxContextTokens`.
 */
export function demonstrationSegment(
  demo: Demonstration,
  limits: Pick<EpisodeLimits, 'maxObservationTokens' | 'maxContextTokens' | 'trainOnEndOfTurn' | 'maxTokensPerTurn'>,
): Segment {
  const tokens: number[] = [BOS];
  const isOutput: (0 | 1)[] = [0];
  const turn: number[] = [-1];
  let turns = 0;
  for (const part of demo.turns) {
    if (part.role === 'env') {
      const room = limits.maxContextTokens - tokens.length;
      for (const t of observationTokens(part.text, Math.min(limits.maxObservationTokens, Math.max(0, room)))) {
        tokens.push(t);
        isOutput.push(0);
        turn.push(turns - 1);
      }
    } else {
      const ids = [...tokenizer.encode(part.text).slice(0, limits.maxTokensPerTurn - 1), EOT];
      if (tokens.length + ids.length > limits.maxContextTokens) break;
      for (const t of ids) {
        tokens.push(t);
        isOutput.push(t !== EOT || limits.trainOnEndOfTurn ? 1 : 0);
        turn.push(turns);
      }
      turns += 1;
    }
  }
  return { tokens, isOutput, logProbs: tokens.map(() => 0), turn };
}
