/**
 * MuZero networks: shapes, initial outputs, weights as safetensors bytes, the scale-gradient op, and the
 * unroll loss — its value at initialisation by hand, and its gradient against a reference that applies
 * the 1/K and ½ scalings with explicit stop-gradients.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../../core/errors.js';
import { Rng } from '../../../core/rng.js';
import { selectBackend } from '../../../models/backend.js';
import { MuZeroNetworks, resolveNetworkConfig, type MuZeroNetworkConfig } from '../../../models/muzero/networks.js';
import { scaleGradient } from '../../../models/muzero/ops.js';
import { muzeroLoss, twoHotTargets, type MuZeroLossOptions } from '../../../trainer/muzero/loss.js';
import type { UnrollBatch } from '../../../trainer/muzero/replay.js';

const live: MuZeroNetworks[] = [];
function networks(seed: number, overrides: Partial<MuZeroNetworkConfig> = {}): MuZeroNetworks {
  const net = new MuZeroNetworks(
    resolveNetworkConfig({
      observationSize: 6,
      numActions: 3,
      stateSize: 5,
      hiddenSize: 7,
      representationLayers: 1,
      dynamicsLayers: 1,
      predictionLayers: 1,
      supportSize: 4,
      valueScale: 10,
      ...overrides,
    }),
    seed,
  );
  live.push(net);
  return net;
}

/** Give every zero-initialised head random weights, so outputs and gradients are non-trivial. */
function randomiseHeads(net: MuZeroNetworks, seed: number): void {
  const rng = new Rng(seed);
  const weights = net.getWeights();
  for (const [name, tensor] of Object.entries(weights)) {
    if (/policy|value|reward/.test(name)) for (let i = 0; i < tensor.data.length; i++) tensor.data[i] = 0.5 * rng.normal();
  }
  net.setWeights(weights);
}

function randomBatch(seed: number, B: number, K: number, O: number, A: number): UnrollBatch {
  const rng = new Rng(seed);
  const uniform = (n: number, lo = 0, hi = 1) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.next());
  const policyTargets = new Float32Array((K + 1) * B * A);
  const policyMask = new Float32Array((K + 1) * B);
  for (let k = 0; k <= K; k++) {
    for (let b = 0; b < B; b++) {
      if (k === K && b === 0) continue; // sample 0 ends before its last unroll step
      policyMask[k * B + b] = 1;
      const row = uniform(A, 0.1, 1);
      const sum = row.reduce((x, y) => x + y, 0);
      policyTargets.set(
        row.map((x) => x / sum),
        (k * B + b) * A,
      );
    }
  }
  const rewardTargets = uniform((K + 1) * B, 0, 0.3);
  for (let b = 0; b < B; b++) rewardTargets[b] = 0;
  return {
    batchSize: B,
    unrollSteps: K,
    observationSize: O,
    numActions: A,
    observations: uniform(B * O),
    actions: Int32Array.from({ length: K * B }, () => rng.int(A)),
    valueTargets: uniform((K + 1) * B, 0, 0.8),
    rewardTargets,
    policyTargets,
    policyMask,
    weights: uniform(B, 0.3, 1),
    slots: new Int32Array(B),
  };
}

const lossOptions: MuZeroLossOptions = { valueLossWeight: 0.25, l2: 1e-4, dynamicsGradientScale: 0.5 };

beforeAll(async () => {
  await selectBackend('cpu');
});

afterEach(() => {
  while (live.length) live.pop()!.dispose();
});

describe('MuZeroNetworks', () => {
  it('starts with a uniform policy and zero value and reward; hidden states are min-max scaled to [0, 1]', async () => {
    const net = networks(1);
    const obs = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i));
    const first = await net.initialInference(obs, 2);
    expect(Array.from(first.policyLogits)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(first.values)).toEqual([0, 0]);
    const next = await net.recurrentInference(first.states, Int32Array.from([2, 0]), 2);
    expect(Array.from(next.rewards)).toEqual([0, 0]);
    for (const states of [first.states, next.states]) {
      for (let b = 0; b < 2; b++) {
        const row = Array.from(states.subarray(b * 5, b * 5 + 5));
        expect(Math.min(...row)).toBe(0);
        expect(Math.max(...row)).toBeCloseTo(1, 4);
      }
    }
  });

  it('is a pure function of config and seed', () => {
    expect(networks(3).toSafetensors()).toEqual(networks(3).toSafetensors());
    expect(networks(3).toSafetensors()).not.toEqual(networks(4).toSafetensors());
  });

  it('round-trips weights as safetensors bytes, architecture included', async () => {
    const source = networks(5);
    randomiseHeads(source, 9);
    const bytes = await source.toSafetensorsAsync();
    const restored = MuZeroNetworks.fromSafetensors(bytes, { scope: 'restored' });
    live.push(restored);
    expect(restored.config).toEqual(source.config);
    const obs = Float32Array.from({ length: 6 }, (_, i) => i / 6);
    const a = await source.initialInference(obs, 1);
    const b = await restored.initialInference(obs, 1);
    expect(b).toEqual(a);
    const other = networks(6);
    other.loadSafetensors(bytes);
    expect(await other.initialInference(obs, 1)).toEqual(a);
    expect(source.getWeights()).toEqual(await source.getWeightsAsync());
  });

  it('refuses weights of another architecture, naming the problem', () => {
    const bytes = networks(1, { hiddenSize: 8 }).toSafetensors();
    expect(() => networks(1).loadSafetensors(bytes)).toThrow(CheckpointError);
    const weights = networks(2).getWeights();
    delete weights['dynamics.reward.bias'];
    expect(() => networks(2).setWeights(weights)).toThrow(/missing tensor 'dynamics\.reward\.bias'/);
  });

  it('rejects a bad architecture field', () => {
    expect(() => resolveNetworkConfig({ observationSize: 4, numActions: 3, stateSize: 1 })).toThrow(/muzero\.network\.stateSize/);
  });
});

describe('scaleGradient', () => {
  it('is the identity forward and multiplies the gradient by the scale', () => {
    const x = tf.tensor1d([1, -2, 3]);
    const y = scaleGradient(tf.square(x), 0.25);
    expect(Array.from(y.dataSync())).toEqual([1, 4, 9]);
    // d/dx Σ w ⊙ scale(x²) = 0.25 · 2x · w.
    const grad = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(scaleGradient(tf.square(v), 0.25), tf.tensor1d([1, 2, 3]))))(x);
    expect(Array.from(grad.dataSync())).toEqual([0.5, -2, 4.5]);
    tf.dispose([x, y, grad]);
  });
});

describe('muzeroLoss', () => {
  it('at initialisation equals the hand value: log A per policy term, log(2S+1) per value and reward term', () => {
    const net = networks(7);
    const B = 3;
    const K = 2;
    const batch = randomBatch(1, B, K, 6, 3);
    const out = tf.tidy(() => {
      const o = muzeroLoss(net, batch, lossOptions);
      return [o.loss, o.policyLoss, o.valueLoss, o.rewardLoss, o.l2Loss].map((t) => t.dataSync()[0]);
    });
    const logA = Math.log(3);
    const logBins = Math.log(9);
    // Policy and value CE against uniform predictions do not depend on the target's shape (it sums to 1).
    let weighted = 0;
    for (let b = 0; b < B; b++) {
      let perSample = 0;
      for (let k = 0; k <= K; k++)
        perSample += batch.policyMask[k * B + b] * logA + lossOptions.valueLossWeight * logBins + (k >= 1 ? logBins : 0);
      weighted += batch.weights[b] * perSample;
    }
    let squares = 0;
    for (const t of Object.values(net.getWeights())) for (const x of t.data) squares += x * x;
    const l2 = 1e-4 * squares;
    expect(out[0]).toBeCloseTo(weighted / B + l2, 4);
    expect(out[1]).toBeCloseTo((logA * (3 + 3 + 2)) / 3, 5); // Σ_k mean_b(mask·log A)
    expect(out[2]).toBeCloseTo(3 * logBins, 5);
    expect(out[3]).toBeCloseTo(2 * logBins, 5);
    expect(out[4]).toBeCloseTo(l2, 6);
  });

  it('has the gradient of l0 + (1/K)·Σ l_k with the state fed to each later dynamics step carrying ½ of its gradient', () => {
    const net = networks(11);
    randomiseHeads(net, 12);
    const B = 2;
    const K = 3;
    const batch = randomBatch(2, B, K, 6, 3);
    const actual = tf.variableGrads(() => muzeroLoss(net, batch, lossOptions).loss, net.variables);

    // Reference: the same unroll written out, scalings as explicit surrogates: a stop-gradient copy
    // (a fresh tensor from the value) blends in as s' = ½·s + ½·stop(s), and later steps are multiplied by 1/K.
    const stop = (t: tf.Tensor2D) => tf.tensor2d(t.dataSync() as Float32Array, t.shape);
    const ce = (logits: tf.Tensor2D, target: Float32Array, k: number, width: number) =>
      tf.neg(tf.sum(tf.mul(tf.tensor2d(target.subarray(k * B * width, (k + 1) * B * width), [B, width]), tf.logSoftmax(logits)), 1));
    const valueTargets = twoHotTargets(net, batch.valueTargets);
    const rewardTargets = twoHotTargets(net, batch.rewardTargets);
    const bins = net.support.size;
    const reference = tf.variableGrads(() => {
      let s = net.represent(tf.tensor2d(batch.observations, [B, 6]));
      let input = s;
      let total: tf.Tensor = tf.zeros([B]);
      for (let k = 0; k <= K; k++) {
        let reward: tf.Tensor | undefined;
        if (k >= 1) {
          const next = net.dynamics(input, net.oneHot(batch.actions.subarray((k - 1) * B, k * B)));
          s = next.state;
          input = tf.add(tf.mul(s, 0.5), tf.mul(stop(s), 0.5)) as tf.Tensor2D;
          reward = ce(next.rewardLogits, rewardTargets, k, bins);
        }
        const p = net.predict(s);
        let term = tf.add(
          tf.mul(ce(p.policyLogits, batch.policyTargets, k, 3), tf.tensor1d(batch.policyMask.subarray(k * B, (k + 1) * B))),
          tf.mul(ce(p.valueLogits, valueTargets, k, bins), 0.25),
        );
        if (reward) term = tf.add(term, reward);
        total = tf.add(total, k === 0 ? term : tf.mul(term, 1 / K));
      }
      const l2 = tf.mul(tf.addN(net.variables.map((v) => tf.sum(tf.square(v)))), 1e-4);
      return tf.add(tf.mean(tf.mul(total, tf.tensor1d(batch.weights))), l2) as tf.Scalar;
    }, net.variables);

    let compared = 0;
    for (const [name, grad] of Object.entries(reference.grads)) {
      const a = actual.grads[name].dataSync();
      const r = grad.dataSync();
      let scale = 1e-6;
      for (const x of r) scale = Math.max(scale, Math.abs(x));
      for (let i = 0; i < r.length; i++) expect(Math.abs(a[i] - r[i]) / scale, `${name}[${i}]`).toBeLessThan(1e-4);
      compared += 1;
    }
    expect(compared).toBe(net.variables.length);
    // The scalings matter: the dynamics weights' gradient differs from the unscaled loss's.
    const unscaled = tf.variableGrads(() => muzeroLoss(net, batch, { ...lossOptions, dynamicsGradientScale: 1 }).loss, net.variables);
    const name = net.variables.find((v) => v.name.endsWith('dynamics.0.weight'))!.name;
    const diff = tf.max(tf.abs(tf.sub(unscaled.grads[name], actual.grads[name]))).dataSync()[0];
    expect(diff).toBeGreaterThan(1e-6);
    tf.dispose([
      actual.value,
      reference.value,
      unscaled.value,
      ...Object.values(actual.grads),
      ...Object.values(reference.grads),
      ...Object.values(unscaled.grads),
    ]);
  });

  it('with K = 1 its gradient is the true gradient (central finite differences)', () => {
    const net = networks(21);
    randomiseHeads(net, 22);
    const batch = randomBatch(3, 2, 1, 6, 3);
    const lossValue = () => tf.tidy(() => muzeroLoss(net, batch, lossOptions).loss.dataSync()[0]);
    const { value, grads } = tf.variableGrads(() => muzeroLoss(net, batch, lossOptions).loss, net.variables);
    const rng = new Rng(5);
    const h = 1e-2;
    for (const variable of net.variables.filter((v) => v.name.endsWith('.weight'))) {
      const data = variable.dataSync().slice() as Float32Array;
      const i = rng.int(data.length);
      const probe = (delta: number) => {
        const moved = data.slice();
        moved[i] += delta;
        variable.assign(tf.tensor(moved, variable.shape));
        return lossValue();
      };
      const numeric = (probe(h) - probe(-h)) / (2 * h);
      variable.assign(tf.tensor(data, variable.shape));
      const analytic = grads[variable.name].dataSync()[i];
      expect(Math.abs(numeric - analytic), variable.name).toBeLessThan(2e-3 + 2e-2 * Math.abs(analytic));
    }
    tf.dispose([value, ...Object.values(grads)]);
  });
});
