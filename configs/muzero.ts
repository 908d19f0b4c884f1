/**
 * Options of the mallocMuZero agent as zod schemas — the `muzero:` config section, embedded by the run
 * config schema; the code that reads them lives in models/muzero (networks, search) and trainer/muzero
 * (replay, loss, updates).
 * Pure zod: no tensors, no I/O. Each field's description is its documentation.
 */
import { z } from 'zod';
import { MallocGameOptionsSchema } from '../envs/malloc/game.js';

/** `muzero.network`: architecture of h, g, f (the observation and action sizes come from the game). */
export const MuZeroNetworkOptionsSchema = z
  .object({
    stateSize: z.number().int().min(2).default(64).describe('D, size of the hidden state s.'),
    hiddenSize: z.number().int().min(1).default(128).describe('Width of every hidden MLP layer.'),
    representationLayers: z.number().int().min(0).default(2).describe('Hidden layers of h before the state projection.'),
    dynamicsLayers: z.number().int().min(0).default(2).describe('Hidden layers of g before the reward and state heads.'),
    predictionLayers: z.number().int().min(0).default(1).describe('Hidden layers of f before the policy and value heads.'),
    supportSize: z.number().int().min(1).default(20).describe('S: value and reward are categorical over the integers −S..S (2S + 1 bins).'),
    valueScale: z
      .number()
      .positive()
      .default(100)
      .describe('Scalars are multiplied by this before the h-transform (returns lie in [0, 1)).'),
  })
  .strict();
export type MuZeroNetworkOptions = z.output<typeof MuZeroNetworkOptionsSchema>;

/** `muzero.search`: tree search used by self-play (and, with other values, by evaluation and reanalyse). */
export const SearchConfigSchema = z
  .object({
    algorithm: z
      .enum(['gumbel', 'puct'])
      .default('gumbel')
      .describe('Root and interior selection: Gumbel MuZero (good with 8–32 simulations) or pUCT with Dirichlet noise.'),
    simulations: z.number().int().min(1).max(10_000).default(16).describe('n, simulations per move.'),
    dynamics: z
      .enum(['learned', 'simulator'])
      .default('learned')
      .describe('Expand with the learned dynamics g (MuZero) or with the real game (AlphaZero-style control arm).'),
    discount: z.number().min(0).max(1).default(1).describe('γ.'),
    pbCInit: z.number().positive().default(1.25).describe('c1 of pUCT.'),
    pbCBase: z.number().positive().default(19652).describe('c2 of pUCT.'),
    dirichletConcentration: z
      .number()
      .positive()
      .default(10)
      .describe('Σα of the pUCT root noise: each legal action gets α = this / #legal.'),
    rootExplorationFraction: z.number().min(0).max(1).default(0.25).describe('ε of the pUCT root noise (0 for evaluation).'),
    temperature: z.number().min(0).default(1).describe('pUCT: the action is sampled ∝ N^(1/temperature); 0 = most visited.'),
    maxConsideredActions: z.number().int().min(1).default(16).describe('Gumbel m: root actions entering sequential halving.'),
    gumbelScale: z.number().min(0).default(1).describe('Scale of the root Gumbel noise (0 for deterministic evaluation).'),
    cVisit: z.number().min(0).default(50).describe('c_visit of σ(q̂).'),
    cScale: z.number().min(0).default(0.1).describe('c_scale of σ(q̂).'),
  })
  .strict();
export type SearchConfig = z.output<typeof SearchConfigSchema>;
export type SearchConfigInput = Partial<z.input<typeof SearchConfigSchema>>;

/** `muzero.replay`: the learner's prioritised replay, with the unroll and TD settings it builds targets for. */
export const ReplayOptionsSchema = z
  .object({
    capacity: z.number().int().min(1).default(100_000).describe('Positions kept; oldest episodes are evicted first.'),
    priorityExponent: z.number().min(0).default(1).describe('α: P(i) ∝ p_i^α (0 = uniform).'),
    importanceExponent: z.number().min(0).default(1).describe('β of the importance weights (N·P(i))^(−β).'),
    priorityEpsilon: z.number().positive().default(1e-6).describe('Added to |ν − z| so no position has priority 0.'),
    unrollSteps: z.number().int().min(1).default(5).describe('K, steps of the learned dynamics unrolled per sample.'),
    tdSteps: z.number().int().min(1).default(10).describe('n of the n-step value targets.'),
    discount: z.number().min(0).max(1).default(1).describe('γ (must equal muzero.search.discount).'),
  })
  .strict();
export type ReplayOptions = z.output<typeof ReplayOptionsSchema>;

/** The loss part of `muzero.train`. */
export const MuZeroLossOptionsSchema = z
  .object({
    valueLossWeight: z.number().min(0).default(0.25).describe('λ_v (MuZero Reanalyse uses 0.25).'),
    l2: z.number().min(0).default(1e-4).describe('c_L2 of the weight penalty c·Σθ².'),
    dynamicsGradientScale: z
      .number()
      .min(0)
      .max(1)
      .default(0.5)
      .describe('Gradient scale of each hidden state before it feeds the next dynamics step.'),
  })
  .strict();
export type MuZeroLossOptions = z.output<typeof MuZeroLossOptionsSchema>;

/** `muzero.train`: learner updates. */
export const MuZeroTrainOptionsSchema = MuZeroLossOptionsSchema.extend({
  learningRate: z.number().positive().default(3e-4).describe('Adam learning rate.'),
  batchSize: z.number().int().min(1).default(256).describe('Positions per update.'),
  gradClip: z.number().positive().optional().describe('Global gradient-norm clip; absent = no clipping.'),
  beta1: z.number().min(0).lt(1).default(0.9).describe('Adam β1.'),
  beta2: z.number().min(0).lt(1).default(0.999).describe('Adam β2.'),
  eps: z.number().positive().default(1e-8).describe('Adam ε.'),
}).strict();
export type MuZeroTrainOptions = z.output<typeof MuZeroTrainOptionsSchema>;

/** The agent's section: game, networks, search, replay and learner options, each with its defaults. */
export const MuZeroOptionsSchema = z
  .object({
    game: MallocGameOptionsSchema.prefault({}).describe('The game: action space, candidates, buffer order, observation.'),
    network: MuZeroNetworkOptionsSchema.prefault({}).describe('Representation, dynamics and prediction networks.'),
    search: SearchConfigSchema.prefault({}).describe('Search during self-play.'),
    replay: ReplayOptionsSchema.prefault({}).describe('Prioritised replay and targets.'),
    train: MuZeroTrainOptionsSchema.prefault({}).describe('Learner updates.'),
  })
  .strict()
  .refine((o) => o.search.discount === o.replay.discount, {
    message: 'muzero.search.discount and muzero.replay.discount must be equal (the search and the value targets use the same γ)',
    path: ['replay', 'discount'],
  });
export type MuZeroOptions = z.output<typeof MuZeroOptionsSchema>;
