/** Public surface of the update algorithms: LOOP (and its ablations) and the supervised warm start. */
export {
  groupAdvantages,
  groupRollouts,
  filterByAdvantage,
  planMinibatches,
  minibatchDivisor,
  clipBounds,
  loopLoss,
  shouldAbort,
} from './loop.js';
export type { AdvantageOptions, RolloutOutcome, ScoredRollout, ClipBounds, RatioMode, LoopLossInputs, LoopLossStats } from './loop.js';
export { sftLoss } from './sft.js';
export {
  DELETHINK_OBJECTIVE_DEFAULTS,
  grpoAdvantages,
  groupTraceAdvantages,
  traceWeights,
  traceMinibatches,
  delethinkLoss,
  trimTraceToBudget,
  segmentResponses,
  accuracyByBudget,
} from './delethink.js';
export type { ChunkRowSize, DelethinkLossInputs, DelethinkLossStats, ChunkResponses, TrimmedTrace, BudgetAccuracy } from './delethink.js';
