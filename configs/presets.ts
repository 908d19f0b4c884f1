/**
 * Algorithm presets: the settings each compared method uses in the LOOP paper (Chen et al. 2025, Table 3
 * and §5). A preset fills `loop.*` under what the user wrote: explicit fields always win.
 */
import type { RunConfigInput } from './schema.js';

type LoopInput = NonNullable<RunConfigInput['loop']>;

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
  custom: {},
} as const satisfies Record<string, LoopInput>;
