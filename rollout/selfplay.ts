/**
 * MuZero self-play on the malloc game, in process: one game per program, all played in lock-step so
 * that every search simulation step is one batched network call for all games still running. Returns
 * compact, JSON-serialisable episodes — actions, rewards, search values and policy targets, not
 * observations: the learner rebuilds those by replaying the actions (`episodeObservations`), because
 * the game is deterministic.
 */
import { z } from 'zod';
import type { Rng } from '../core/rng.js';
import { MallocGame, type MallocGameOptions } from '../envs/malloc/game.js';
import type { CompiledProgram } from '../envs/malloc/types.js';
import type { SearchModel } from '../models/muzero/networks.js';
import { runSearch, type SearchConfig, type SearchRoot } from '../models/muzero/search.js';

/** A program to play, under the id that episodes and the learner use for it. */
export interface SelfPlayProgram {
  readonly id: string;
  readonly program: CompiledProgram;
}

/** One finished game (crosses the queue as JSON; parse with MallocEpisodeSchema). */
export const MallocEpisodeSchema = z
  .object({
    programId: z.string(),
    policyVersion: z.number().int().min(0),
    numActions: z.number().int().min(2),
    /** [L] a_t. */
    actions: z.array(z.number().int().min(0)),
    /** [L] u_{t+1}, dense rewards. */
    rewards: z.array(z.number()),
    /** [L] ν_t, search values. */
    rootValues: z.array(z.number()),
    /** [L · numActions] π_t, rounded to 6 decimals (the replay buffer renormalises rows). */
    policies: z.array(z.number().min(0)),
    /** Σ rewards: the share of time saved vs all-slow. */
    return: z.number(),
    /** T of the final mapping, time units. */
    finalTime: z.number(),
    /** T with every buffer slow. */
    allSlowTime: z.number(),
  })
  .strict()
  .refine(
    (e) =>
      e.rewards.length === e.actions.length &&
      e.rootValues.length === e.actions.length &&
      e.policies.length === e.actions.length * e.numActions,
    {
      message: 'episode arrays disagree in length (rewards, rootValues: L; policies: L × numActions)',
    },
  );
export type MallocEpisode = z.output<typeof MallocEpisodeSchema>;

/** How to play. */
export interface SelfPlayOptions {
  readonly search: SearchConfig;
  readonly game?: Partial<MallocGameOptions>;
  /** Stamped on every episode: the weights version the model holds. Default 0. */
  readonly policyVersion?: number;
}

/**
 * Play every program once with search on `model`; episodes come back in program order. `rng` draws
 * all search noise and sampled actions, so a fixed model, programs and seed give the same episodes.
 */
export async function selfPlayGames(
  model: SearchModel,
  programs: readonly SelfPlayProgram[],
  options: SelfPlayOptions,
  rng: Rng,
): Promise<MallocEpisode[]> {
  const games = programs.map(({ program }) => new MallocGame(program, options.game ?? {}));
  const observations = games.map((game) => new Float32Array(game.observationSize));
  const records = games.map(() => ({
    actions: [] as number[],
    rewards: [] as number[],
    rootValues: [] as number[],
    policies: [] as number[],
  }));
  for (;;) {
    const live: number[] = [];
    for (let i = 0; i < games.length; i++) if (!games[i].done) live.push(i);
    if (live.length === 0) break;
    const roots: SearchRoot[] = live.map((i) => {
      games[i].observe(observations[i]);
      return { observation: observations[i], legalMask: games[i].legalMask().slice(), game: games[i] };
    });
    const outputs = await runSearch(model, roots, options.search, rng);
    live.forEach((i, j) => {
      const out = outputs[j];
      const record = records[i];
      record.actions.push(out.action);
      record.rootValues.push(out.rootValue);
      for (const p of out.policyTarget) record.policies.push(Math.round(p * 1e6) / 1e6);
      record.rewards.push(games[i].step(out.action));
    });
  }
  return games.map((game, i) => ({
    programId: programs[i].id,
    policyVersion: options.policyVersion ?? 0,
    numActions: game.numActions,
    ...records[i],
    return: game.returnSoFar,
    finalTime: game.totalTime,
    allSlowTime: game.program.allSlowTime,
  }));
}
