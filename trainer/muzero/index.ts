/** The MuZero learner's pieces: n-step targets, prioritised replay, the unroll loss, one update, reanalyse. */
export { nStepValueTargets, valueTargetAt } from './targets.js';
export {
  PrioritizedReplay,
  ReplayOptionsSchema,
  type ReplayEpisodeInput,
  type ReplayOptions,
  type StoredEpisode,
  type UnrollBatch,
} from './replay.js';
export { MuZeroLossOptionsSchema, muzeroLoss, twoHotTargets, type MuZeroLossOptions, type MuZeroLossOutput } from './loss.js';
export {
  MuZeroTrainOptionsSchema,
  createMuZeroOptimizer,
  muzeroTrainStep,
  type MuZeroStepStats,
  type MuZeroTrainOptions,
} from './train.js';
export { reanalyse, type ReanalyseSimulator } from './reanalyse.js';
export { episodeToReplayInput } from './episodes.js';
