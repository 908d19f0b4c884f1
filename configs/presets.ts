/**
 * Algorithm presets: the settings each compared method uses in the LOOP paper (Chen et al. 2025, Table 3
 * and §5). A preset fills `loop.*` under what the user wrote: explicit fields always win.
 */
import type { RunConfigInput } from './schema.js';

type LoopInput = NonNullable<RunConfigInput['loop']>;

/** Delethink's objective, shared by its LongCoT baseline (docs/delethink.md, "The objective"). */
const DELETHINK_OBJECTIVE = {
  advantage: 'group-mean',
  normalize: 'std',
  epochs: 1,
  clipEpsilon: 0.2,
  clipHighEpsilon: 0.26,
  dualClip: 3,
  aggregation: 'trace-length',
  importanceSampling: 'always',
  advantageFilter: 0,
  klCoef: 0,
} as const satisfies LoopInput;

/** `loop.*` values per `algorithm`; `custom` adds nothing. */
export const algorithmPresets = {
  /** LOOP (token): leave-one-out, no std normalisation, 2 epochs of PPO minibatches, per-token ratio. */
  loop: {},
  /** LOOP RwNorm: advantages divided by the group std (= off-policy GRPO). */
  'loop-rwnorm': { normalize: 'std' },
  /** GRPO: group-mean baseline with std normalisation, strictly on-policy, KL to the initial policy. */
  grpo: { advantage: 'group-mean', normalize: 'std', epochs: 1, fullBatch: true, klCoef: 0.04 },
  /** GRPO without the KL penalty. */
  'grpo-nokl': { advantage: 'group-mean', normalize: 'std', epochs: 1, fullBatch: true, klCoef: 0 },
  /** RLOO: leave-one-out, on-policy, one ratio per trajectory, one gradient step per batch. */
  rloo: { advantage: 'leave-one-out', normalize: 'none', epochs: 1, fullBatch: true, ratio: 'trajectory' },
  /**
   * Delethink (Aghajohari et al. 2025): GRPO advantages (std-normalised), one pass, clip [1 − 0.2, 1 + 0.26],
   * dual clip 3, truncated importance sampling on every token, loss aggregated by trace length, no KL.
   * Two optimizer steps per RL step come from `loop.minibatchSize` = half the traces of an iteration.
   */
  delethink: DELETHINK_OBJECTIVE,
  /** The LongCoT baseline: the same objective on one-chunk traces (a trace-length mean = per-sequence token mean). */
  longcot: DELETHINK_OBJECTIVE,
  /**
   * Mem-α (Wang et al. 2025): GRPO over all chunk samples of all rollouts of an instance, PPO clip 0.2,
   * token-mean aggregation, one epoch, small KL to the initial writer (released script: 0.001).
   */
  memalpha: {
    advantage: 'group-mean',
    normalize: 'std',
    epochs: 1,
    clipEpsilon: 0.2,
    aggregation: 'token-mean',
    advantageUnit: 'turn',
    advantageFilter: 0,
    klCoef: 0.001,
  },
  custom: {},
} as const satisfies Record<string, LoopInput>;
