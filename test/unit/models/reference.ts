/**
 * An independent float64 implementation of the policy's forward pass, written with plain loops from
 * the Llama/Qwen2 equations and reading weights in Hugging Face layout ([out, in] linear weights).
 * Tests compare TransformerPolicy against it.
 */
import type { NamedTensor } from '../../../models/safetensors.js';
import type { PolicyConfig, ResolvedPolicyConfig } from '../../../models/transformer.js';

/** A small architecture exercising GQA (4 query heads over 2 kv heads) and qkv bias. */
export function tinyConfig(overrides: Partial<PolicyConfig> = {}): PolicyConfig {
  return {
    vocabSize: 11,
    dModel: 16,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    ffnHidden: 24,
    maxSeqLen: 32,
    ropeTheta: 10000,
    normEps: 1e-5,
    qkvBias: true,
    // Large enough that next-token distributions are far from uniform.
    initStd: 0.3,
    ...overrides,
  };
}

type Weights = Record<string, NamedTensor>;

function rmsNorm(x: Float64Array, gain: ArrayLike<number>, eps: number): Float64Array {
  let meanSquare = 0;
  for (const v of x) meanSquare += v * v;
  meanSquare /= x.length;
  const scale = 1 / Math.sqrt(meanSquare + eps);
  return x.map((v, i) => v * scale * gain[i]);
}

/** y = W·x (+ b) with W stored [out, in]. */
function linear(x: Float64Array, w: NamedTensor, bias?: NamedTensor): Float64Array {
  const [outDim, inDim] = w.shape;
  const y = new Float64Array(outDim);
  for (let o = 0; o < outDim; o++) {
    let sum = bias ? bias.data[o] : 0;
    for (let i = 0; i < inDim; i++) sum += w.data[o * inDim + i] * x[i];
    y[o] = sum;
  }
  return y;
}

/** Rotate each head's vector by position p: pairs (i, i + half) turn by p·θ^(−2i/headDim). */
function rope(x: Float64Array, heads: number, headDim: number, position: number, theta: number): Float64Array {
  const out = new Float64Array(x.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const angle = position * theta ** ((-2 * i) / headDim);
      const a = x[h * headDim + i];
      const b = x[h * headDim + half + i];
      out[h * headDim + i] = a * Math.cos(angle) - b * Math.sin(angle);
      out[h * headDim + half + i] = b * Math.cos(angle) + a * Math.sin(angle);
    }
  }
  return out;
}

/** Next-token logits after every position of `tokens`: [T][V]. */
export function referenceLogits(weights: Weights, cfg: ResolvedPolicyConfig, tokens: readonly number[]): Float64Array[] {
  const { dModel: d, nHeads, nKvHeads, headDim, normEps, ropeTheta } = cfg;
  const embedding = weights['model.embed_tokens.weight'];
  let xs = tokens.map((t) => Float64Array.from(embedding.data.subarray(t * d, (t + 1) * d)));
  const group = nHeads / nKvHeads;
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = (name: string) => weights[`model.layers.${l}.${name}`];
    const normed = xs.map((x) => rmsNorm(x, p('input_layernorm.weight').data, normEps));
    const qs = normed.map((h, t) =>
      rope(linear(h, p('self_attn.q_proj.weight'), p('self_attn.q_proj.bias')), nHeads, headDim, t, ropeTheta),
    );
    const ks = normed.map((h, t) =>
      rope(linear(h, p('self_attn.k_proj.weight'), p('self_attn.k_proj.bias')), nKvHeads, headDim, t, ropeTheta),
    );
    const vs = normed.map((h) => linear(h, p('self_attn.v_proj.weight'), p('self_attn.v_proj.bias')));
    xs = xs.map((x, t) => {
      const attended = new Float64Array(nHeads * headDim);
      for (let h = 0; h < nHeads; h++) {
        const kv = Math.floor(h / group);
        const scores = Array.from({ length: t + 1 }, (_, j) => {
          let dot = 0;
          for (let i = 0; i < headDim; i++) dot += qs[t][h * headDim + i] * ks[j][kv * headDim + i];
          return dot / Math.sqrt(headDim);
        });
        const max = Math.max(...scores);
        const exps = scores.map((s) => Math.exp(s - max));
        const total = exps.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= t; j++) {
          for (let i = 0; i < headDim; i++) attended[h * headDim + i] += (exps[j] / total) * vs[j][kv * headDim + i];
        }
      }
      const afterAttention = x.map((v, i) => v + linear(attended, p('self_attn.o_proj.weight'))[i]);
      const m = rmsNorm(afterAttention, p('post_attention_layernorm.weight').data, normEps);
      const gate = linear(m, p('mlp.gate_proj.weight'));
      const up = linear(m, p('mlp.up_proj.weight'));
      const activated = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
      const down = linear(activated, p('mlp.down_proj.weight'));
      return afterAttention.map((v, i) => v + down[i]);
    });
  }
  return xs.map((x) => linear(rmsNorm(x, weights['model.norm.weight'].data, normEps), embedding));
}

/** log softmax(logits / temperature). */
export function referenceLogSoftmax(logits: Float64Array, temperature: number): Float64Array {
  const scaled = logits.map((v) => v / temperature);
  const max = Math.max(...scaled);
  const logTotal = Math.log(scaled.reduce((sum, v) => sum + Math.exp(v - max), 0)) + max;
  return scaled.map((v) => v - logTotal);
}

/** Entry t ≥ 1: log p(tokens[t] | tokens[<t]); entry 0: 0. */
export function referenceLogProbs(weights: Weights, cfg: ResolvedPolicyConfig, tokens: readonly number[], temperature = 1): number[] {
  const logits = referenceLogits(weights, cfg, tokens);
  return tokens.map((token, t) => (t === 0 ? 0 : referenceLogSoftmax(logits[t - 1], temperature)[token]));
}
