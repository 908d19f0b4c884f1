import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, ConfigError } from '../../../core/errors.js';
import { Rng } from '../../../core/rng.js';
import { selectBackend } from '../../../models/backend.js';
import { decodeSafetensors } from '../../../models/safetensors.js';
import { TransformerPolicy, resolvePolicyConfig, type TokenBatch } from '../../../models/transformer.js';
import { referenceLogProbs, tinyConfig } from './reference.js';

const live: TransformerPolicy[] = [];
function policy(seed: number, overrides: Parameters<typeof tinyConfig>[0] = {}): TransformerPolicy {
  const created = new TransformerPolicy(tinyConfig(overrides), seed);
  live.push(created);
  return created;
}

function randomTokens(rng: Rng, length: number, vocab: number): number[] {
  return Array.from({ length }, () => rng.int(vocab));
}

/** Rows right-padded with `pad` to `seqLen`. */
function batchOf(rows: number[][], seqLen: number, pad: number): TokenBatch {
  const tokens = new Int32Array(rows.length * seqLen).fill(pad);
  rows.forEach((row, b) => tokens.set(row, b * seqLen));
  return { tokens, batchSize: rows.length, seqLen };
}

function logProbRows(p: TransformerPolicy, batch: TokenBatch, temperature = 1): number[][] {
  const lp = p.logProbs(batch, temperature);
  const rows = lp.arraySync();
  lp.dispose();
  return rows;
}

beforeAll(async () => {
  await selectBackend('wasm');
});

afterEach(() => {
  while (live.length) live.pop()!.dispose();
});

describe('resolvePolicyConfig', () => {
  it('fills nKvHeads and ffnHidden (⌈8·d/3⌉ rounded up to a multiple of 8)', () => {
    const resolved = resolvePolicyConfig(tinyConfig({ dModel: 64, nHeads: 4, nKvHeads: undefined, ffnHidden: undefined }));
    expect(resolved.nKvHeads).toBe(4);
    expect(resolved.ffnHidden).toBe(176); // 8·64/3 = 170.67 → 171 → 176
    expect(resolved.headDim).toBe(16);
    expect(resolvePolicyConfig(tinyConfig({ dModel: 96, nHeads: 4, ffnHidden: undefined })).ffnHidden).toBe(256);
    expect(resolvePolicyConfig(resolved)).toEqual(resolved);
  });

  it('rejects shapes that do not fit together', () => {
    expect(() => resolvePolicyConfig(tinyConfig({ nHeads: 3 }))).toThrow(ConfigError);
    expect(() => resolvePolicyConfig(tinyConfig({ nHeads: 4, nKvHeads: 3 }))).toThrow(/nKvHeads \(3\) must divide/);
    expect(() => resolvePolicyConfig(tinyConfig({ dModel: 12, nHeads: 4 }))).toThrow(/must be even/);
  });
});

describe('TransformerPolicy parameters', () => {
  it('uses Hugging Face names and [out, in] shapes, and counts parameters', () => {
    const p = policy(1);
    const weights = p.getWeights();
    expect(weights['model.embed_tokens.weight'].shape).toEqual([11, 16]);
    expect(weights['model.layers.0.self_attn.q_proj.weight'].shape).toEqual([16, 16]);
    expect(weights['model.layers.0.self_attn.k_proj.weight'].shape).toEqual([8, 16]); // 2 kv heads × 4
    expect(weights['model.layers.1.self_attn.v_proj.bias'].shape).toEqual([8]);
    expect(weights['model.layers.1.mlp.gate_proj.weight'].shape).toEqual([24, 16]);
    expect(weights['model.layers.1.mlp.down_proj.weight'].shape).toEqual([16, 24]);
    expect(weights['model.norm.weight'].shape).toEqual([16]);
    // Per layer: norms 2·16, q 16·16 + 16, k and v 8·16 + 8 each, o 16·16, MLP 3·24·16.
    const perLayer = 2 * 16 + (256 + 16) + 2 * (128 + 8) + 256 + 3 * 384;
    expect(p.paramCount).toBe(11 * 16 + 2 * perLayer + 16);
    expect(Object.keys(weights)).toHaveLength(1 + 2 * 12 + 1);
    expect(p.variables.map((v) => v.name)).toEqual(p.parameterNames.map((name) => `${p.variableScope}/${name}`));
  });

  it('initialises deterministically from the seed: norms 1, biases 0, matrices N(0, initStd²)', () => {
    const a = policy(5).getWeights();
    const b = policy(5).getWeights();
    const c = policy(6).getWeights();
    for (const name of Object.keys(a)) expect(b[name].data).toEqual(a[name].data);
    expect(c['model.layers.0.mlp.up_proj.weight'].data).not.toEqual(a['model.layers.0.mlp.up_proj.weight'].data);
    expect(Array.from(a['model.layers.0.input_layernorm.weight'].data).every((v) => v === 1)).toBe(true);
    expect(Array.from(a['model.layers.0.self_attn.q_proj.bias'].data).every((v) => v === 0)).toBe(true);
    const matrix = Array.from(a['model.layers.1.mlp.up_proj.weight'].data);
    const std = Math.sqrt(matrix.reduce((s, v) => s + v * v, 0) / matrix.length);
    expect(std).toBeGreaterThan(0.25);
    expect(std).toBeLessThan(0.35);
  });

  it('gives two live policies distinct variable scopes', () => {
    const first = policy(1);
    const second = policy(1);
    expect(first.variableScope).not.toBe(second.variableScope);
    const named = new TransformerPolicy(tinyConfig(), 1, { scope: 'reference' });
    live.push(named);
    expect(named.variables[0].name).toBe('reference/model.embed_tokens.weight');
  });
});

describe('TransformerPolicy.logProbs', () => {
  it('matches an independent float64 implementation (GQA, qkv bias, RoPE, SwiGLU, tied embeddings)', () => {
    const p = policy(11);
    const weights = p.getWeights();
    const rng = new Rng(3);
    const rows = [randomTokens(rng, 9, 11), randomTokens(rng, 9, 11)];
    for (const temperature of [1, 0.7]) {
      const got = logProbRows(p, batchOf(rows, 9, 0), temperature);
      rows.forEach((row, b) => {
        const expected = referenceLogProbs(weights, p.config, row, temperature);
        expect(got[b][0]).toBe(0);
        got[b].forEach((v, t) => expect(Math.abs(v - expected[t])).toBeLessThan(1e-4));
      });
    }
  });

  it('gives a row the same log-probs with or without padding and other rows', () => {
    const p = policy(2);
    const rng = new Rng(9);
    const row = randomTokens(rng, 6, 11);
    const alone = logProbRows(p, batchOf([row], 6, 0))[0];
    const padded = logProbRows(p, batchOf([randomTokens(rng, 10, 11), row, randomTokens(rng, 3, 11)], 10, 7));
    expect(padded[1].slice(0, 6).map((v, t) => Math.abs(v - alone[t]))).toSatisfy((d: number[]) => d.every((x) => x < 1e-5));
    expect(padded.length).toBe(3);
    expect(padded[1]).toHaveLength(10);
  });

  it('is exactly −ln V everywhere when every weight is zero (uniform next-token distribution)', () => {
    const p = policy(3);
    const zeros = Object.fromEntries(
      Object.entries(p.getWeights()).map(([name, t]) => [name, { ...t, data: new Float32Array(t.data.length) }]),
    );
    p.setWeights(zeros);
    const { logProbs, entropy } = p.logProbsWithEntropy(batchOf([[1, 2, 3, 4]], 4, 0));
    expect(logProbs.arraySync()[0].map((v) => Number(v.toFixed(6)))).toEqual([0, ...Array(3).fill(Number((-Math.log(11)).toFixed(6)))]);
    expect(
      entropy
        .arraySync()[0]
        .slice(1)
        .every((h) => Math.abs(h - Math.log(11)) < 1e-5),
    ).toBe(true);
    tf.dispose([logProbs, entropy]);
  });

  it('is differentiable w.r.t. every variable and leaks no tensors', () => {
    const p = policy(4);
    const batch = batchOf(
      [
        [1, 5, 2, 8, 3],
        [4, 4, 9, 0, 0],
      ],
      5,
      0,
    );
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => tf.neg(tf.mean(p.logProbs(batch))) as tf.Scalar, p.variables);
    expect(Object.keys(grads).sort()).toEqual(p.variables.map((v) => v.name).sort());
    for (const g of Object.values(grads)) {
      const values = g.dataSync();
      expect(values.every(Number.isFinite)).toBe(true);
      expect(values.some((v) => v !== 0)).toBe(true);
    }
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('computes the same gradients on wasm (one-hot embedding) and cpu (gather embedding)', async () => {
    const p = policy(8, { nLayers: 1 });
    const batch = batchOf([[1, 5, 2, 8, 3, 3]], 6, 0);
    const gradientsOn = async (backend: 'wasm' | 'cpu') => {
      await selectBackend(backend);
      const { value, grads } = tf.variableGrads(() => tf.sum(p.logProbs(batch)) as tf.Scalar, p.variables);
      const out = p.variables.map((v) => Array.from(grads[v.name].dataSync()));
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    };
    const onWasm = await gradientsOn('wasm');
    const onCpu = await gradientsOn('cpu');
    await selectBackend('wasm');
    onWasm.forEach((g, i) => g.forEach((v, j) => expect(Math.abs(v - onCpu[i][j])).toBeLessThan(1e-4)));
  });

  it('validates the batch', () => {
    const p = policy(1);
    expect(() => p.logProbs({ tokens: new Int32Array(5), batchSize: 2, seqLen: 3 })).toThrow(/expected batchSize × seqLen = 6/);
    expect(() => p.logProbs({ tokens: new Int32Array(33), batchSize: 1, seqLen: 33 })).toThrow(/exceeds model.maxSeqLen 32/);
    expect(() => p.logProbs(batchOf([[1, 11]], 2, 0))).toThrow(/token id 11 at row 0, position 1/);
    expect(() => p.logProbs(batchOf([[1, 2]], 2, 0), 0)).toThrow(/temperature/);
  });

  it('a wasm training step of a 2-layer, dModel-64 policy on 32 × 64 tokens starts at the uniform loss with finite gradients', () => {
    const p = new TransformerPolicy(
      {
        ...tinyConfig(),
        vocabSize: 260,
        dModel: 64,
        nLayers: 2,
        nHeads: 4,
        nKvHeads: undefined,
        ffnHidden: undefined,
        maxSeqLen: 64,
        qkvBias: false,
        initStd: 0.02,
      },
      1,
    );
    live.push(p);
    const rng = new Rng(1);
    const batch: TokenBatch = { tokens: Int32Array.from({ length: 32 * 64 }, () => rng.int(260)), batchSize: 32, seqLen: 64 };
    const { value, grads } = tf.variableGrads(() => tf.neg(tf.mean(p.logProbs(batch))) as tf.Scalar, p.variables);
    const loss = value.dataSync()[0];
    const finite = Object.values(grads).every((g) => Array.from(g.dataSync()).every(Number.isFinite));
    tf.dispose([value, ...Object.values(grads)]);
    // Near-uniform at init: mean over 63 of 64 positions of ≈ ln 260. (Its speed is bench/learner.ts's job.)
    expect(loss).toBeCloseTo((63 / 64) * Math.log(260), 1);
    expect(finite).toBe(true);
  });
});

describe('TransformerPolicy weights', () => {
  it('round-trips through safetensors with identical log-probs', () => {
    const source = policy(21);
    const target = policy(22);
    const batch = batchOf(
      [
        [1, 2, 3, 4, 5, 6],
        [7, 8, 9, 10, 0, 0],
      ],
      6,
      0,
    );
    const expected = logProbRows(source, batch);
    expect(logProbRows(target, batch)).not.toEqual(expected);
    const bytes = source.toSafetensors();
    target.loadSafetensors(bytes);
    expect(logProbRows(target, batch)).toEqual(expected);
    const { metadata, tensors } = decodeSafetensors(bytes);
    expect(metadata.format).toBe('pt');
    expect(JSON.parse(metadata['horizon.model_config']).nKvHeads).toBe(2);
    expect(tensors['model.layers.0.self_attn.k_proj.weight'].shape).toEqual([8, 16]);
  });

  it('exports linear weights in [out, in] layout', async () => {
    const p = policy(4);
    const exported = await p.getWeightsAsync();
    const q = exported['model.layers.0.self_attn.q_proj.weight'];
    // With one non-zero weight W[out=2, in=5], x·Wᵀ moves input channel 5 into output channel 2.
    const data = new Float32Array(q.data.length);
    data[2 * 16 + 5] = 1;
    p.setWeights({ ...exported, 'model.layers.0.self_attn.q_proj.weight': { ...q, data } });
    const index = p.parameterNames.indexOf('model.layers.0.self_attn.q_proj.weight');
    const stored = p.variables[index].arraySync() as number[][]; // storage layout [in, out]
    expect(stored[5][2]).toBe(1);
    expect(stored.flat().filter((v) => v !== 0)).toHaveLength(1);
    expect((await p.getWeightsAsync())['model.layers.0.self_attn.q_proj.weight'].data).toEqual(data);
  });

  it('rejects a mis-shaped, missing, extra or integer tensor with a CheckpointError naming it', () => {
    const p = policy(1);
    const weights = p.getWeights();
    const name = 'model.layers.1.mlp.up_proj.weight';
    const wrongShape = { ...weights, [name]: { dtype: 'F32' as const, shape: [16, 24], data: new Float32Array(384) } };
    expect(() => p.setWeights(wrongShape)).toThrow(CheckpointError);
    expect(() => p.setWeights(wrongShape)).toThrow(`tensor '${name}' has shape [16, 24], expected [24, 16]`);
    const missing = { ...weights };
    delete missing['model.norm.weight'];
    expect(() => p.setWeights(missing)).toThrow(/missing tensor 'model.norm.weight'/);
    expect(() => p.setWeights({ ...weights, 'lm_head.weight': weights['model.embed_tokens.weight'] })).toThrow(
      /unexpected tensor 'lm_head.weight'/,
    );
    const integer = { ...weights, 'model.norm.weight': { dtype: 'I32' as const, shape: [16], data: new Int32Array(16) } };
    expect(() => p.setWeights(integer)).toThrow(/'model.norm.weight' has dtype I32/);
    // A failed load changes nothing.
    expect(p.getWeights()[name].data).toEqual(weights[name].data);
  });

  it('frees its variables on dispose', () => {
    const before = tf.memory().numTensors;
    const p = new TransformerPolicy(tinyConfig(), 1);
    expect(tf.memory().numTensors).toBe(before + p.variables.length);
    p.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => p.logProbs(batchOf([[1, 2]], 2, 0))).toThrow(/disposed/);
  });
});
