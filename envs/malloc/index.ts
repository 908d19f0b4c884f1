/**
 * mallocGame: memory mapping as a single-player game (docs/mallocmuzero.md). Programs and the
 * cost model, the game, the checker, classical baselines, workload generators, file loaders and the
 * held-out benchmark set. No tensors here: the MuZero agent lives in models/muzero and trainer/muzero.
 */
export {
  SLOW,
  type CompiledProgram,
  type MallocProgram,
  type Mapping,
  type MemorySpec,
  type ProgramAccess,
  type ProgramBuffer,
  type ProgramInstruction,
} from './types.js';
export {
  BUFFER_ORDERS,
  allSlowMapping,
  bufferOrder,
  compileProgram,
  instructionTime,
  programTime,
  timeOfFastTraffic,
  type BufferOrder,
} from './program.js';
export { FastMemoryLayout, gapScratch } from './packing.js';
export {
  CANDIDATE_FEATURES,
  CURRENT_BUFFER_FEATURES,
  GLOBAL_FEATURES,
  LOOKAHEAD_FEATURES,
  MallocGame,
  MallocGameOptionsSchema,
  episodeObservations,
  observationLayout,
  replayActions,
  resolveGameOptions,
  type MallocGameOptions,
  type ObservationLayout,
} from './game.js';
export { checkMapping, evaluateMapping, type EvaluatedMapping, type MappingCheck } from './checker.js';
export {
  REFERENCE_ORDERINGS,
  bestFitReference,
  exactGameOptimum,
  greedyMapping,
  referenceOrder,
  xlaLikeBaseline,
  type BaselineSolution,
  type GameOptimum,
  type PlacementRule,
  type ReferenceOrdering,
} from './baselines.js';
export {
  ConvNetProgramSchema,
  PEAK_FLOPS_PER_TIME_UNIT,
  RandomProgramSchema,
  TransformerProgramSchema,
  WorkloadSchema,
  convNetProgram,
  generateProgram,
  randomProgram,
  transformerProgram,
  type ConvNetProgramOptions,
  type RandomProgramOptions,
  type TransformerProgramOptions,
  type WorkloadInput,
  type WorkloadOptions,
} from './generators.js';
export {
  MallocProgramSchema,
  MiniMallocCsvOptionsSchema,
  loadProgramFile,
  parseMiniMallocCsv,
  parseProgramJson,
  programToJson,
  type MiniMallocCsvOptions,
} from './loaders.js';
export { formatSpeedupTable, speedupRow, summariseSpeedups, type SpeedupRow, type SpeedupSummary } from './evaluate.js';
export {
  HELDOUT_DIR,
  HELDOUT_SET,
  generateHeldoutPrograms,
  heldoutFiles,
  loadHeldoutSet,
  writeHeldoutSet,
  type HeldoutEntry,
} from './heldout.js';
