/**
 * The policy model layer: byte tokenizer, tfjs backend selection, the Llama/Qwen2-style transformer,
 * KV-cache sampling and the safetensors weight format. Importing it also registers the kernel
 * gradients that training needs (see gradients.ts).
 */
import './gradients.js';

export { BOS_ID, BYTE_TOKENIZER_VOCAB_SIZE, ByteTokenizer, EOT_ID, PAD_ID } from './tokenizer.js';
export { selectBackend, type BackendChoice, type BackendName, type BackendRequest } from './backend.js';
export { matMul2d } from './matmul.js';
export { kernelsWithGradients } from './gradients.js';
export {
  MASKED_SCORE,
  TransformerPolicy,
  checkTemperature,
  nextTokenLogProbs,
  resolvePolicyConfig,
  sequentialPositions,
  type DecoderInput,
  type DecoderOutput,
  type KvCache,
  type PolicyConfig,
  type ResolvedPolicyConfig,
  type RopeTables,
  type TokenBatch,
  type TransformerPolicyOptions,
} from './transformer.js';
export { generate, type GenerationOptions, type GenerationRequest, type GenerationResult } from './sampler.js';
export { decodeSafetensors, encodeSafetensors, type NamedTensor, type TensorDType } from './safetensors.js';
