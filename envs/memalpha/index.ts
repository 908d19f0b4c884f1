/** Mem-α: the memory-writer environment, its memory and tools, reader, judges, data and baselines. */
export * from './types.js';
export { countTokens, lastTokens, truncateToTokens } from './tokens.js';
export {
  CORE_TRUNCATION_NOTICE,
  DEFAULT_CORE_TOKEN_CAP,
  MemoryStore,
  capCore,
  memoryTokens,
  replayCalls,
  type IdScheme,
  type MemoryStoreOptions,
} from './store.js';
export { formatToolCall, formatToolCalls, parseToolCalls, type CallSyntax } from './parser.js';
export {
  chunkCutNote,
  promptInstructions,
  renderChunkPrompt,
  renderPrompt,
  type ChunkPosition,
  type ChunkPrompt,
  type MemoryView,
  type PromptOptions,
} from './view.js';
export { WriterEpisode, callOutcomes, contentItems, type CallRecord, type ChunkRecord, type EpisodeOptions } from './episode.js';
export {
  Bm25Index,
  ChunkRetriever,
  DEFAULT_BM25,
  ExtractiveReader,
  LlmReader,
  MemoryRetriever,
  bm25Tokens,
  contentStems,
  extractiveAnswer,
  longContextPassages,
  readerMessages,
  splitSentences,
  stem,
  type Bm25Params,
  type Passage,
  type Reader,
  type ReaderQuestion,
} from './reader.js';
export {
  LlmAnswerJudge,
  LlmContentJudge,
  RuleContentJudge,
  answerJudgeMessages,
  contentJudgeMessages,
  contentProblem,
  type AnswerJudge,
  type AnswerJudgeItem,
  type ContentJudge,
  type ContentJudgeItem,
} from './judge.js';
export { ChatClient, mapLimit, type ChatEndpoint, type ChatMessage, type FetchLike } from './openai.js';
export {
  baselineScores,
  evaluateMemory,
  instanceMetric,
  meanScore,
  type BaselineKind,
  type BaselineOptions,
  type EvaluationOptions,
  type QuestionScore,
} from './baselines.js';
export { heuristicCalls, heuristicResponse, isSalient, runHeuristicWriter, type DemonstrationTurn } from './heuristic.js';
export { generateInstance, generatedSource, type GeneratorOptions, type InstanceSpec } from './data/generate.js';
export { MemalphaInstanceFileSchema, loadInstancesFile, parseInstances } from './data/load.js';
export { RELATIONS, parseChangeSentence, parseFactSentence, type Relation, type RelationName } from './data/relations.js';
export {
  MEMALPHA_BASELINES,
  MEMALPHA_SPLITS,
  MemalphaEnv,
  memalphaBaseline,
  memalphaDemonstration,
  memalphaDemonstrationTurns,
  memalphaEnv,
  memalphaEpisodeOptions,
  memalphaInstance,
  memalphaOptionsSchema,
  memalphaServices,
  memalphaTaskCount,
  type MemalphaBaseline,
  type MemalphaOptions,
  type MemalphaScoreDetail,
  type MemalphaServices,
} from './env.js';
