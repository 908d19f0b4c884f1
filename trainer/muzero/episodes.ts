/**
 * From a self-play episode (what a worker returns) to what the replay buffer stores: the observations
 * and legal masks are rebuilt by replaying the actions on the same program with the same game options.
 */
import { TrainingError } from '../../core/errors.js';
import { episodeObservations, type MallocGameOptions } from '../../envs/malloc/game.js';
import type { CompiledProgram } from '../../envs/malloc/types.js';
import type { MallocEpisode } from '../../rollout/selfplay.js';
import type { ReplayEpisodeInput } from './replay.js';

/**
 * Rebuild an episode's observations. The replayed rewards must equal the recorded ones; if they do not,
 * the worker played another program or other game options, and this throws TrainingError.
 */
export function episodeToReplayInput(
  episode: MallocEpisode,
  program: CompiledProgram,
  gameOptions: Partial<MallocGameOptions>,
): ReplayEpisodeInput {
  let rebuilt: ReturnType<typeof episodeObservations>;
  try {
    rebuilt = episodeObservations(program, gameOptions, episode.actions);
  } catch (err) {
    throw new TrainingError(`episode of "${episode.programId}" does not replay on program "${program.name}": ${(err as Error).message}`, {
      cause: err,
    });
  }
  for (let t = 0; t < episode.actions.length; t++) {
    if (rebuilt.rewards[t] !== episode.rewards[t]) {
      throw new TrainingError(
        `episode of "${episode.programId}" replays with reward ${rebuilt.rewards[t]} at step ${t}, the worker recorded ${episode.rewards[t]}; worker and learner disagree on the program or the game options`,
      );
    }
  }
  return {
    programId: episode.programId,
    policyVersion: episode.policyVersion,
    observations: rebuilt.observations,
    legalMasks: rebuilt.legalMasks,
    actions: episode.actions,
    rewards: episode.rewards,
    rootValues: episode.rootValues,
    policies: episode.policies,
  };
}
