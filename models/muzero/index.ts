/**
 * MuZero for the malloc game: networks (h, g, f), categorical support with the h-transform, the
 * scale-gradient op, and batched search (pUCT / Gumbel; learned or true-simulator dynamics).
 */
export { CategoricalSupport, H_EPSILON, hInverse, hTransform } from './support.js';
export {
  MuZeroNetworkOptionsSchema,
  MuZeroNetworks,
  minMaxScale,
  resolveNetworkConfig,
  type DynamicsTensors,
  type InferenceBatch,
  type MuZeroNetworkConfig,
  type PredictionTensors,
  type SearchModel,
} from './networks.js';
export { scaleGradient } from './ops.js';
export {
  SearchConfigSchema,
  resolveSearchConfig,
  runSearch,
  sampleDirichlet,
  sampleGamma,
  sampleGumbel,
  sequentialHalvingSchedule,
  type SearchConfig,
  type SearchGame,
  type SearchOutput,
  type SearchRoot,
} from './search.js';
