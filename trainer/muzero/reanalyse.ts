/**
 * Reanalyse (spec "Reanalyse"; Schrittwieser et al. 2021): re-run search with the latest networks on
 * stored positions and replace their policy targets π and search values ν, so old games keep teaching
 * the current network. Value targets z are recomputed from the fresh ν, and priorities reset.
 */
import type { Rng } from '../../core/rng.js';
import { MallocGame, type MallocGameOptions } from '../../envs/malloc/game.js';
import type { CompiledProgram } from '../../envs/malloc/types.js';
import type { SearchModel } from '../../models/muzero/networks.js';
import { runSearch, type SearchConfig, type SearchRoot } from '../../models/muzero/search.js';
import type { PrioritizedReplay } from './replay.js';

/** What the simulator arm needs to rebuild games: each episode's program and the game options. */
export interface ReanalyseSimulator {
  readonly programs: ReadonlyMap<string, CompiledProgram>;
  readonly gameOptions: Partial<MallocGameOptions>;
}

/**
 * Refresh the episodes `ids` (missing ones are skipped) with `config` search, `batchSize` roots per
 * batched search. With `config.dynamics === 'simulator'`, `simulator` must name the programs; the games
 * are rebuilt by replaying each episode's actions (deterministic replay, invariant 6). Returns the
 * number of positions refreshed.
 */
export async function reanalyse(
  model: SearchModel,
  replay: PrioritizedReplay,
  ids: readonly number[],
  config: SearchConfig,
  rng: Rng,
  options: { batchSize?: number; simulator?: ReanalyseSimulator } = {},
): Promise<number> {
  const batchSize = options.batchSize ?? 256;
  const O = replay.observationSize;
  const A = replay.numActions;
  let refreshed = 0;
  for (const id of ids) {
    const episode = replay.episode(id);
    if (episode === undefined) continue;
    const L = episode.length;
    let games: MallocGame[] | undefined;
    if (config.dynamics === 'simulator') {
      const program = options.simulator?.programs.get(episode.programId);
      if (program === undefined)
        throw new RangeError(`reanalyse: the simulator arm needs program "${episode.programId}" (pass options.simulator.programs)`);
      games = [];
      const game = new MallocGame(program, options.simulator?.gameOptions ?? {});
      for (let t = 0; t < L; t++) {
        games.push(game.clone());
        game.step(episode.actions[t]);
      }
    }
    const policies = new Float32Array(L * A);
    const rootValues = new Float32Array(L);
    for (let from = 0; from < L; from += batchSize) {
      const roots: SearchRoot[] = [];
      for (let t = from; t < Math.min(L, from + batchSize); t++) {
        roots.push({
          observation: episode.observations.subarray(t * O, (t + 1) * O),
          legalMask: episode.legalMasks.subarray(t * A, (t + 1) * A),
          game: games?.[t],
        });
      }
      const outputs = await runSearch(model, roots, config, rng);
      outputs.forEach((out, j) => {
        policies.set(out.policyTarget, (from + j) * A);
        rootValues[from + j] = out.rootValue;
      });
    }
    replay.refresh(id, policies, rootValues);
    refreshed += L;
  }
  return refreshed;
}
