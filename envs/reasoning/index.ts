/** Single-answer reasoning tasks for Delethink / LongCoT: generated running sums and multiplications, and JSONL data. */
export {
  GENERATED_SPLIT_SIZES,
  SingleAnswerEnv,
  answerReward,
  finalAnswerText,
  generatedTaskCount,
  problemSeed,
  traceDemonstration,
  type ReasoningProblem,
} from './common.js';
export {
  runningSumCarryoverTokens,
  runningSumDemonstration,
  runningSumEnv,
  runningSumOptionsSchema,
  runningSumProblem,
  runningSumQuestion,
  runningSumTrace,
  type RunningSumOptions,
  type RunningSumProblem,
} from './running-sum.js';
export {
  multiplyCarryoverTokens,
  multiplyDemonstration,
  multiplyEnv,
  multiplyOptionsSchema,
  multiplyProblem,
  multiplyQuestion,
  multiplyTrace,
  type MultiplyOptions,
  type MultiplyProblem,
} from './multiply.js';
export {
  JsonlProblemSchema,
  jsonlDemonstration,
  jsonlEnv,
  jsonlOptionsSchema,
  jsonlProblem,
  jsonlSplits,
  jsonlTaskCount,
  loadJsonlFile,
  parseJsonlProblems,
  splitProblems,
  type JsonlOptions,
  type JsonlProblem,
  type JsonlSplits,
} from './jsonl.js';
