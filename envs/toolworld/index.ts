/** toolworld: a stateful multi-app API environment for LOOP (see docs/toolworld.md). */
export { ToolworldEnv, NO_CALL_REPLY, TURN_LIMIT_NOTE, runSolver, toolworldDemonstration, toolworldEnv, toolworldPrompt } from './env.js';
export { toolworldOptionsSchema, type ToolworldOptions, type ToolworldOptionsInput } from './options.js';
export { toolworldMetrics, passedAll, type CompletionRates, type ToolworldMetrics, type ToolworldResult } from './metrics.js';
export {
  SPLITS,
  VARIANTS_PER_SCENARIO,
  generateTask,
  locateTask,
  scenarioKey,
  taskCount,
  templatePool,
  type GeneratedTask,
  type Split,
  type TaskLocation,
} from './tasks.js';
export { parseAction, formatCall, formatCalls, type ParseLimits, type ParseResult, type ParsedCall } from './parser.js';
export { executeCall, executeCalls, renderOutcome, renderTurn, truncateWithNote, type CallOutcome, type TurnOutcome } from './executor.js';
export {
  answersMatch,
  canonicalRow,
  expectedChanges,
  runChecks,
  type CheckResult,
  type ExpectedChange,
  type TaskExpectation,
} from './checks.js';
export { APPS, ALL_APIS, DATA_APPS, apiDoc, apiSignature } from './apps/index.js';
export {
  ApiError,
  MAX_PAGE_SIZE,
  newSession,
  paginate,
  type ApiContext,
  type ApiDefinition,
  type AppDefinition,
  type Session,
} from './api.js';
export { TEMPLATES, TEMPLATES_BY_NAME, type TaskTemplate } from './templates/index.js';
export { SolverContext, SolverStuck, type SolverNoise, type SolverSettings } from './solver.js';
export { generateWorld, cloneWorld, TABLE_NAMES, type World, type WorldSize } from './world.js';
