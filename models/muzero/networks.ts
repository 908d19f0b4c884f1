/**
 * The three MuZero networks (spec "The agent: MuZero, in small"; Schrittwieser et al. 2020), as small
 * MLPs over the game's flat observation:
 *
 *   representation  h(o) → s        o: [B, O] → ReLU MLP → [B, D] → min-max scaled to [0, 1] per sample
 *   dynamics        g(s, a) → r, s'  [s ‖ onehot(a)]: [B, D + A] → ReLU MLP → reward logits [B, 2S+1],
 *                                    next state [B, D] (min-max scaled)
 *   prediction      f(s) → p, v      s → ReLU MLP → policy logits [B, A], value logits [B, 2S+1]
 *
 * Value and reward are categorical over the support of support.ts. The policy, value and reward heads
 * start at zero (uniform prior, value and reward 0), the hidden layers He-normal from a seeded Rng, so
 * the same config and seed give the same weights on every backend. Linear weights are stored and
 * exported as [in, out] (every product is a plain x·W, the wasm fast path).
 */
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, ConfigError } from '../../core/errors.js';
import { MuZeroNetworkOptionsSchema, type MuZeroNetworkOptions } from '../../configs/muzero.js';
import { Rng } from '../../core/rng.js';
import '../gradients.js';
import { matMul2d } from '../matmul.js';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from '../safetensors.js';
import { CategoricalSupport } from './support.js';

/** Architecture of a MuZeroNetworks instance. */
export interface MuZeroNetworkConfig extends MuZeroNetworkOptions {
  /** O, length of the observation vector (`MallocGame.observationSize`). */
  readonly observationSize: number;
  /** A, number of actions (`MallocGame.numActions`). */
  readonly numActions: number;
}

/** Declared in configs/muzero.ts, with the run config that embeds it. */
export { MuZeroNetworkOptionsSchema };

/** Validate and fill in defaults; throws ConfigError naming the field. */
export function resolveNetworkConfig(
  input: Partial<MuZeroNetworkOptions> & { observationSize: number; numActions: number },
): MuZeroNetworkConfig {
  const { observationSize, numActions, ...rest } = input;
  const parsed = MuZeroNetworkOptionsSchema.safeParse(rest);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`muzero.network.${issue.path.join('.')}: ${issue.message}`, { context: { path: issue.path } });
  }
  if (!(Number.isInteger(observationSize) && observationSize >= 1))
    throw new ConfigError(`MuZero observationSize must be an integer ≥ 1, got ${observationSize}`);
  if (!(Number.isInteger(numActions) && numActions >= 2))
    throw new ConfigError(`MuZero numActions must be an integer ≥ 2, got ${numActions}`);
  return Object.freeze({ ...parsed.data, observationSize, numActions });
}

/** Outputs of the tensor-level passes (differentiable). */
export interface PredictionTensors {
  /** [B, A] unnormalised policy logits. */
  readonly policyLogits: tf.Tensor2D;
  /** [B, 2S + 1] value logits over the support. */
  readonly valueLogits: tf.Tensor2D;
}

/** g's outputs. */
export interface DynamicsTensors {
  /** [B, D] next hidden state, min-max scaled. */
  readonly state: tf.Tensor2D;
  /** [B, 2S + 1] reward logits over the support. */
  readonly rewardLogits: tf.Tensor2D;
}

/**
 * Host-side outputs of one batched network call (what search consumes). Scalars are decoded:
 * E over the support, then h⁻¹ and ÷ scale.
 */
export interface InferenceBatch {
  /** [B · D] hidden states (row-major). */
  readonly states: Float32Array;
  /** [B · A] policy logits. */
  readonly policyLogits: Float32Array;
  /** [B] predicted values v. */
  readonly values: Float32Array;
  /** [B] predicted rewards r (0 for the initial inference). */
  readonly rewards: Float32Array;
}

/** A model that search can query in batches (MuZeroNetworks, or a hand-made stand-in in tests). */
export interface SearchModel {
  readonly numActions: number;
  readonly stateSize: number;
  /** h then f on B observations [B · O]. */
  initialInference(observations: Float32Array, batch: number): Promise<InferenceBatch>;
  /** g then f on B states [B · D] and actions [B]. */
  recurrentInference(states: Float32Array, actions: Int32Array, batch: number): Promise<InferenceBatch>;
}

interface ParameterSpec {
  readonly name: string;
  readonly shape: readonly [number] | readonly [number, number];
  /** 'he': N(0, 2/fan_in) weights; 'zero': zeros (biases and output heads). */
  readonly init: 'he' | 'zero';
}

/** Linear layer names of one MLP: `${prefix}.${i}` for i < layers, as [in, out] weights. */
function mlpSpecs(prefix: string, input: number, hidden: number, layers: number): { specs: ParameterSpec[]; output: number } {
  const specs: ParameterSpec[] = [];
  let width = input;
  for (let i = 0; i < layers; i++) {
    specs.push(
      { name: `${prefix}.${i}.weight`, shape: [width, hidden], init: 'he' },
      { name: `${prefix}.${i}.bias`, shape: [hidden], init: 'zero' },
    );
    width = hidden;
  }
  return { specs, output: width };
}

function headSpecs(name: string, input: number, output: number, init: 'he' | 'zero'): ParameterSpec[] {
  return [
    { name: `${name}.weight`, shape: [input, output], init },
    { name: `${name}.bias`, shape: [output], init: 'zero' },
  ];
}

/** Every parameter of the architecture, in a fixed order. */
function parameterSpecs(c: MuZeroNetworkConfig): ParameterSpec[] {
  const bins = 2 * c.supportSize + 1;
  const rep = mlpSpecs('representation', c.observationSize, c.hiddenSize, c.representationLayers);
  const dyn = mlpSpecs('dynamics', c.stateSize + c.numActions, c.hiddenSize, c.dynamicsLayers);
  const pred = mlpSpecs('prediction', c.stateSize, c.hiddenSize, c.predictionLayers);
  return [
    ...rep.specs,
    ...headSpecs('representation.state', rep.output, c.stateSize, 'he'),
    ...dyn.specs,
    ...headSpecs('dynamics.state', dyn.output, c.stateSize, 'he'),
    ...headSpecs('dynamics.reward', dyn.output, bins, 'zero'),
    ...pred.specs,
    ...headSpecs('prediction.policy', pred.output, c.numActions, 'zero'),
    ...headSpecs('prediction.value', pred.output, bins, 'zero'),
  ];
}

/** Added to max − min in the min-max scaling, so a constant state does not divide by zero. */
const MIN_MAX_EPSILON = 1e-5;

/**
 * MuZero's h, g and f with their weights. Owns its tfjs variables; call `dispose()` when done.
 * `initialInference` / `recurrentInference` are the batched host-side calls search makes (one network
 * call per simulation step for a whole batch of games); `represent` / `dynamics` / `predict` are the
 * differentiable tensor passes the learner unrolls.
 */
export class MuZeroNetworks implements SearchModel {
  readonly config: MuZeroNetworkConfig;
  readonly support: CategoricalSupport;
  /** Trainable variables in `parameterNames` order. */
  readonly variables: tf.Variable[];
  readonly parameterNames: readonly string[];
  readonly paramCount: number;
  /** Prefix of the tfjs variable names (`muzero/…`, `muzero_1/…` when several live at once). */
  readonly variableScope: string;

  private readonly specs: readonly ParameterSpec[];
  private readonly byName: Map<string, tf.Variable>;
  private readonly supportValues: tf.Tensor1D;
  private disposed = false;

  constructor(config: MuZeroNetworkConfig, seed: number, options: { scope?: string } = {}) {
    this.config = resolveNetworkConfig(config);
    this.support = new CategoricalSupport(this.config.supportSize, this.config.valueScale);
    this.specs = parameterSpecs(this.config);
    this.variableScope = freeScope(options.scope ?? 'muzero', this.specs[0].name);
    const rng = new Rng(seed);
    this.byName = new Map();
    this.variables = this.specs.map((spec) => {
      const size = spec.shape.reduce((a, b) => a * b, 1);
      const values = new Float32Array(size);
      if (spec.init === 'he') {
        const std = Math.sqrt(2 / spec.shape[0]);
        for (let i = 0; i < size; i++) values[i] = std * rng.normal();
      }
      const variable = tf.tidy(() =>
        tf.variable(tf.tensor(values, [...spec.shape], 'float32'), true, `${this.variableScope}/${spec.name}`),
      );
      this.byName.set(spec.name, variable);
      return variable;
    });
    this.parameterNames = this.specs.map((s) => s.name);
    this.paramCount = this.specs.reduce((sum, s) => sum + s.shape.reduce((a, b) => a * b, 1), 0);
    this.supportValues = tf.tensor1d(this.support.binValues());
  }

  /** Build from a safetensors blob written by {@link toSafetensors} (the architecture is in its metadata). */
  static fromSafetensors(bytes: Uint8Array, options: { scope?: string } = {}): MuZeroNetworks {
    const { tensors, metadata } = decodeSafetensors(bytes);
    const json = metadata['horizon.muzero_config'];
    if (json === undefined)
      throw new CheckpointError('MuZero weights lack the "horizon.muzero_config" metadata; they were not written by MuZeroNetworks');
    let config: MuZeroNetworkConfig;
    try {
      config = JSON.parse(json) as MuZeroNetworkConfig;
    } catch (err) {
      throw new CheckpointError(`MuZero weights carry an unreadable architecture: ${(err as Error).message}`, { cause: err });
    }
    const networks = new MuZeroNetworks(config, 0, options);
    try {
      networks.setWeights(tensors);
    } catch (err) {
      networks.dispose();
      throw err;
    }
    return networks;
  }

  get numActions(): number {
    return this.config.numActions;
  }

  get stateSize(): number {
    return this.config.stateSize;
  }

  /** h: observations [B, O] → states [B, D] in [0, 1]. */
  represent(observations: tf.Tensor2D): tf.Tensor2D {
    this.assertLive();
    const trunk = this.mlp('representation', observations, this.config.representationLayers);
    return minMaxScale(this.linear('representation.state', trunk));
  }

  /** g: states [B, D] and one-hot actions [B, A] → next states and reward logits. */
  dynamics(states: tf.Tensor2D, actionsOneHot: tf.Tensor2D): DynamicsTensors {
    this.assertLive();
    const trunk = this.mlp('dynamics', tf.concat([states, actionsOneHot], 1), this.config.dynamicsLayers);
    return { state: minMaxScale(this.linear('dynamics.state', trunk)), rewardLogits: this.linear('dynamics.reward', trunk) };
  }

  /** f: states [B, D] → policy and value logits. */
  predict(states: tf.Tensor2D): PredictionTensors {
    this.assertLive();
    const trunk = this.mlp('prediction', states, this.config.predictionLayers);
    return { policyLogits: this.linear('prediction.policy', trunk), valueLogits: this.linear('prediction.value', trunk) };
  }

  /** One-hot [B, A] float32 for actions [B] (built on the host: wasm's OneHot mislabels its dtype). */
  oneHot(actions: ArrayLike<number>): tf.Tensor2D {
    const A = this.config.numActions;
    const values = new Float32Array(actions.length * A);
    for (let b = 0; b < actions.length; b++) {
      const a = actions[b];
      if (!(a >= 0 && a < A)) throw new RangeError(`action ${a} outside [0, ${A})`);
      values[b * A + a] = 1;
    }
    return tf.tensor2d(values, [actions.length, A]);
  }

  /** E_p[bin] of logits [B, 2S+1]: the transformed scalar y per row, [B]. */
  expectedTransformed(logits: tf.Tensor2D): tf.Tensor1D {
    return tf.sum(tf.mul(tf.softmax(logits), this.supportValues), 1) as tf.Tensor1D;
  }

  async initialInference(observations: Float32Array, batch: number): Promise<InferenceBatch> {
    const { observationSize: O } = this.config;
    if (observations.length < batch * O)
      throw new RangeError(`initialInference: ${observations.length} floats for ${batch} observations of ${O}`);
    const packed = tf.tidy(() => {
      const state = this.represent(tf.tensor2d(observations.subarray(0, batch * O), [batch, O]));
      const { policyLogits, valueLogits } = this.predict(state);
      const value = tf.reshape(this.expectedTransformed(valueLogits), [batch, 1]);
      return tf.concat([state, policyLogits, value], 1) as tf.Tensor2D;
    });
    return this.unpack(packed, batch, false);
  }

  async recurrentInference(states: Float32Array, actions: Int32Array, batch: number): Promise<InferenceBatch> {
    const D = this.config.stateSize;
    if (states.length < batch * D || actions.length < batch)
      throw new RangeError(`recurrentInference: need ${batch} states of ${D} and ${batch} actions`);
    const packed = tf.tidy(() => {
      const next = this.dynamics(tf.tensor2d(states.subarray(0, batch * D), [batch, D]), this.oneHot(actions.subarray(0, batch)));
      const { policyLogits, valueLogits } = this.predict(next.state);
      const value = tf.reshape(this.expectedTransformed(valueLogits), [batch, 1]);
      const reward = tf.reshape(this.expectedTransformed(next.rewardLogits), [batch, 1]);
      return tf.concat([next.state, policyLogits, value, reward], 1) as tf.Tensor2D;
    });
    return this.unpack(packed, batch, true);
  }

  /** Weights by parameter name, [in, out] layout, float32. Works on every backend. */
  async getWeightsAsync(): Promise<Record<string, NamedTensor>> {
    this.assertLive();
    const out: Record<string, NamedTensor> = {};
    for (let i = 0; i < this.specs.length; i++) {
      const data = new Float32Array((await this.variables[i].data()) as Float32Array);
      out[this.specs[i].name] = { dtype: 'F32', shape: [...this.specs[i].shape], data };
    }
    return out;
  }

  /** Synchronous variant of getWeightsAsync (cpu and wasm backends). */
  getWeights(): Record<string, NamedTensor> {
    this.assertLive();
    const out: Record<string, NamedTensor> = {};
    this.specs.forEach((spec, i) => {
      out[spec.name] = { dtype: 'F32', shape: [...spec.shape], data: new Float32Array(this.variables[i].dataSync() as Float32Array) };
    });
    return out;
  }

  /**
   * Replace every weight. Checks everything before assigning anything: a missing, extra, mis-shaped or
   * integer tensor throws CheckpointError naming it.
   */
  setWeights(weights: Record<string, NamedTensor>): void {
    this.assertLive();
    const expected = new Set(this.parameterNames);
    const extra = Object.keys(weights).filter((name) => !expected.has(name));
    if (extra.length > 0)
      throw new CheckpointError(`unexpected tensor '${extra[0]}' in MuZero weights; they do not match this architecture`);
    for (const spec of this.specs) {
      const tensor = weights[spec.name];
      if (tensor === undefined)
        throw new CheckpointError(`missing tensor '${spec.name}' in MuZero weights; they do not match this architecture`);
      if (tensor.shape.length !== spec.shape.length || tensor.shape.some((d, i) => d !== spec.shape[i])) {
        throw new CheckpointError(`tensor '${spec.name}' has shape [${tensor.shape.join(', ')}], expected [${spec.shape.join(', ')}]`);
      }
      if (!(tensor.data instanceof Float32Array) || tensor.dtype === 'I32')
        throw new CheckpointError(`tensor '${spec.name}' has dtype ${tensor.dtype}; expected floating point`);
    }
    this.specs.forEach((spec, i) => {
      tf.tidy(() => this.variables[i].assign(tf.tensor(weights[spec.name].data as Float32Array, [...spec.shape], 'float32')));
    });
  }

  /** The weights and architecture as a safetensors blob (synchronous; cpu and wasm). */
  toSafetensors(): Uint8Array {
    return encodeSafetensors(this.getWeights(), this.metadata());
  }

  /** The weights and architecture as a safetensors blob, on any backend (what the learner publishes). */
  async toSafetensorsAsync(): Promise<Uint8Array> {
    return encodeSafetensors(await this.getWeightsAsync(), this.metadata());
  }

  /** Load a blob from toSafetensors; its architecture must equal this one's. */
  loadSafetensors(bytes: Uint8Array): void {
    const { tensors, metadata } = decodeSafetensors(bytes);
    const stored = metadata['horizon.muzero_config'];
    if (stored !== undefined && stored !== JSON.stringify(this.config)) {
      throw new CheckpointError(
        `MuZero weights were written for a different architecture (${stored}); this network is ${JSON.stringify(this.config)}`,
      );
    }
    this.setWeights(tensors);
  }

  /** Free the variables; the networks cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const variable of this.variables) variable.dispose();
    this.supportValues.dispose();
  }

  private metadata(): Record<string, string> {
    return { format: 'horizon-muzero', 'horizon.muzero_config': JSON.stringify(this.config) };
  }

  private async unpack(packed: tf.Tensor2D, batch: number, withReward: boolean): Promise<InferenceBatch> {
    const { stateSize: D, numActions: A } = this.config;
    const width = D + A + (withReward ? 2 : 1);
    let data: Float32Array;
    try {
      data = (await packed.data()) as Float32Array;
    } finally {
      packed.dispose();
    }
    const states = new Float32Array(batch * D);
    const policyLogits = new Float32Array(batch * A);
    const values = new Float32Array(batch);
    const rewards = new Float32Array(batch);
    for (let b = 0; b < batch; b++) {
      const row = b * width;
      states.set(data.subarray(row, row + D), b * D);
      policyLogits.set(data.subarray(row + D, row + D + A), b * A);
      values[b] = this.support.fromTransformed(data[row + D + A]);
      if (withReward) rewards[b] = this.support.fromTransformed(data[row + D + A + 1]);
    }
    return { states, policyLogits, values, rewards };
  }

  private mlp(prefix: string, input: tf.Tensor2D, layers: number): tf.Tensor2D {
    let x = input;
    for (let i = 0; i < layers; i++) x = tf.relu(this.linear(`${prefix}.${i}`, x));
    return x;
  }

  private linear(name: string, x: tf.Tensor2D): tf.Tensor2D {
    const weight = this.byName.get(`${name}.weight`) as tf.Variable<tf.Rank.R2>;
    const bias = this.byName.get(`${name}.bias`) as tf.Variable<tf.Rank.R1>;
    return tf.add(matMul2d(x, weight), bias);
  }

  private assertLive(): void {
    if (this.disposed) throw new Error('these MuZeroNetworks have been disposed');
  }
}

/** Per-row (x − min) / (max − min + ε): every hidden state in [0, 1] (MuZero appendix G). */
export function minMaxScale(x: tf.Tensor2D): tf.Tensor2D {
  const min = tf.min(x, 1, true);
  const max = tf.max(x, 1, true);
  return tf.div(tf.sub(x, min), tf.add(tf.sub(max, min), MIN_MAX_EPSILON));
}

/** `base`, or `base_1`, `base_2`, … — the first scope whose variables are not registered in tfjs. */
function freeScope(base: string, probeName: string): string {
  const registered = tf.engine().registeredVariables;
  if (registered[`${base}/${probeName}`] === undefined) return base;
  for (let n = 1; ; n++) if (registered[`${base}_${n}/${probeName}`] === undefined) return `${base}_${n}`;
}
