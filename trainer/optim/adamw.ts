/**
 * AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization") over tfjs variables, with
 * global grad-norm clipping and checkpointable state.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, ConfigError, TrainingError } from '../../core/errors.js';
import type { NamedTensor } from '../../models/safetensors.js';

/** Hyper-parameters; the values come from the resolved config (`optim.*`), which holds the defaults. */
export interface AdamWOptions {
  /** Learning rate η (> 0). */
  readonly lr: number;
  /** Decay of the first-moment average, in [0, 1). */
  readonly beta1: number;
  /** Decay of the second-moment average, in [0, 1). */
  readonly beta2: number;
  /** Added to √v̂ in the denominator (> 0). */
  readonly eps: number;
  /** Decoupled weight decay λ (≥ 0): θ ← θ − η·λ·θ each step, independent of the gradient. */
  readonly weightDecay: number;
}

/** Optimizer state for a checkpoint: the step count and both moments of every variable. */
export interface AdamWState {
  /** Number of `step` calls so far (t of the bias correction). */
  readonly step: number;
  /** `m:<variable name>` and `v:<variable name>` for every variable, F32, the variable's shape. */
  readonly tensors: Record<string, NamedTensor>;
}

/** Key of a moment tensor in `AdamWState.tensors`. */
function momentKey(moment: 'm' | 'v', variableName: string): string {
  return `${moment}:${variableName}`;
}

interface Moments {
  readonly m: tf.Variable;
  readonly v: tf.Variable;
}

/**
 * AdamW with bias-corrected moments. For each variable θ with gradient g, at step t:
 *
 *   θ ← θ·(1 − η·λ)                      decoupled weight decay (applied to the pre-update weights)
 *   m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²
 *   θ ← θ − η · (m / (1 − β1ᵗ)) / (√(v / (1 − β2ᵗ)) + ε)
 *
 * Variables are keyed by `tf.Variable.name` (what `tf.variableGrads` returns). A variable missing from a
 * step's gradients is left untouched (no decay either); the step count is shared by all variables.
 * The moments live in non-trainable variables; call `dispose()` when the optimizer is no longer needed.
 */
export class AdamW {
  private readonly variables = new Map<string, tf.Variable>();
  private readonly moments = new Map<string, Moments>();
  private options: AdamWOptions;
  private stepCount = 0;

  constructor(variables: readonly tf.Variable[], options: AdamWOptions) {
    validateOptions(options);
    this.options = { ...options };
    for (const variable of variables) {
      if (this.variables.has(variable.name)) {
        throw new ConfigError(`AdamW got two variables named "${variable.name}"; variable names must be unique`);
      }
      if (variable.dtype !== 'float32') {
        throw new ConfigError(`AdamW can only train float32 variables; "${variable.name}" is ${variable.dtype}`);
      }
      this.variables.set(variable.name, variable);
      // Inside tidy the zero tensors are released and only the (untracked) variables stay.
      this.moments.set(
        variable.name,
        tf.tidy(() => ({ m: tf.variable(tf.zerosLike(variable), false), v: tf.variable(tf.zerosLike(variable), false) })),
      );
    }
  }

  /** Current learning rate η. */
  get learningRate(): number {
    return this.options.lr;
  }

  /** Steps taken (t of the bias correction). */
  get steps(): number {
    return this.stepCount;
  }

  /** Change η for the following steps (schedules, SFT → RL). */
  setLearningRate(lr: number): void {
    validateOptions({ ...this.options, lr });
    this.options = { ...this.options, lr };
  }

  /**
   * One update from gradients keyed by variable name. Gradients are read, not disposed. An unknown name
   * or a gradient whose shape differs from its variable's is a TrainingError.
   */
  step(grads: Record<string, tf.Tensor>): void {
    for (const [name, grad] of Object.entries(grads)) {
      const variable = this.variables.get(name);
      if (variable === undefined) {
        throw new TrainingError(`AdamW.step got a gradient for "${name}", which is not one of the optimizer's variables`, {
          context: { name },
        });
      }
      if (!sameShape(grad.shape, variable.shape)) {
        throw new TrainingError(
          `AdamW.step: gradient of "${name}" has shape [${grad.shape.join(', ')}], variable has [${variable.shape.join(', ')}]`,
          { context: { name } },
        );
      }
    }
    this.stepCount += 1;
    const { lr, beta1, beta2, eps, weightDecay } = this.options;
    const firstCorrection = 1 - beta1 ** this.stepCount;
    const secondCorrection = 1 - beta2 ** this.stepCount;
    for (const [name, grad] of Object.entries(grads)) {
      const variable = this.variables.get(name)!;
      const { m, v } = this.moments.get(name)!;
      tf.tidy(() => {
        const newM = tf.add(tf.mul(m, beta1), tf.mul(grad, 1 - beta1));
        const newV = tf.add(tf.mul(v, beta2), tf.mul(tf.square(grad), 1 - beta2));
        const update = tf.div(tf.div(newM, firstCorrection), tf.add(tf.sqrt(tf.div(newV, secondCorrection)), eps));
        const decayed = weightDecay > 0 ? tf.mul(variable, 1 - lr * weightDecay) : variable;
        m.assign(newM);
        v.assign(newV);
        variable.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
    }
  }

  /**
   * Copies the step count and moments out (host memory) for a checkpoint. Async because GPU backends
   * (webgpu in Node) can only read tensors back asynchronously.
   */
  async getState(): Promise<AdamWState> {
    const tensors: Record<string, NamedTensor> = {};
    for (const [name, { m, v }] of this.moments) {
      // Copies: some backends hand out their live buffer.
      tensors[momentKey('m', name)] = { dtype: 'F32', shape: [...m.shape], data: new Float32Array((await m.data()) as Float32Array) };
      tensors[momentKey('v', name)] = { dtype: 'F32', shape: [...v.shape], data: new Float32Array((await v.data()) as Float32Array) };
    }
    return { step: this.stepCount, tensors };
  }

  /**
   * Restores `getState()` output. The state must match this optimizer exactly — both moments of every
   * variable, same shapes, no extra entries — otherwise a CheckpointError names the offending tensor and
   * nothing is changed.
   */
  setState(state: AdamWState): void {
    if (!Number.isInteger(state.step) || state.step < 0) {
      throw new CheckpointError(`optimizer state has step ${state.step}; expected an integer ≥ 0`);
    }
    const expectedKeys = new Set<string>();
    for (const [name, variable] of this.variables) {
      for (const moment of ['m', 'v'] as const) {
        const key = momentKey(moment, name);
        expectedKeys.add(key);
        const stored = state.tensors[key];
        if (stored === undefined) {
          throw new CheckpointError(
            `optimizer state lacks "${key}" for variable "${name}"; the checkpoint was written for a different model`,
            {
              context: { key },
            },
          );
        }
        if (!(stored.data instanceof Float32Array) || stored.dtype === 'I32') {
          throw new CheckpointError(`optimizer state "${key}" has dtype ${stored.dtype}; expected float32`, { context: { key } });
        }
        if (!sameShape(stored.shape, variable.shape) || stored.data.length !== variable.size) {
          throw new CheckpointError(
            `optimizer state "${key}" has shape [${stored.shape.join(', ')}] (${stored.data.length} values); variable "${name}" is [${variable.shape.join(', ')}]`,
            { context: { key } },
          );
        }
      }
    }
    for (const key of Object.keys(state.tensors)) {
      if (!expectedKeys.has(key)) {
        throw new CheckpointError(
          `optimizer state has "${key}", which matches no variable of this optimizer; the checkpoint was written for a different model`,
          {
            context: { key },
          },
        );
      }
    }
    for (const [name, { m, v }] of this.moments) {
      tf.tidy(() => {
        m.assign(tf.tensor(state.tensors[momentKey('m', name)].data as Float32Array, m.shape, 'float32'));
        v.assign(tf.tensor(state.tensors[momentKey('v', name)].data as Float32Array, v.shape, 'float32'));
      });
    }
    this.stepCount = state.step;
  }

  /** Frees the moment tensors; the optimizer must not be used afterwards. */
  dispose(): void {
    for (const { m, v } of this.moments.values()) {
      m.dispose();
      v.dispose();
    }
    this.moments.clear();
    this.variables.clear();
  }
}

/**
 * Rescales gradients so their global L2 norm ‖g‖ = √(Σ_i Σ g_i²) is at most `maxNorm` (step 9 of docs/loop.md: paper
 * 1.0, reference code 0.1): every gradient is multiplied by maxNorm/‖g‖ when ‖g‖ > maxNorm.
 * Returns new tensors (the caller disposes both the inputs and the outputs) and the pre-clip norm as a
 * number. A non-finite norm leaves the gradients unscaled; the caller should treat it as divergence.
 */
export async function clipGlobalNorm(
  grads: Record<string, tf.Tensor>,
  maxNorm: number,
): Promise<{ grads: Record<string, tf.Tensor>; norm: number }> {
  if (!(maxNorm > 0)) throw new ConfigError(`gradient clip norm must be > 0, got ${maxNorm}`);
  const entries = Object.entries(grads);
  if (entries.length === 0) return { grads: {}, norm: 0 };
  // A balanced tree of two-input adds, not tf.addN: webgpu's AddN binds one storage buffer per input and
  // fails above 8 (a model has dozens of parameter tensors).
  const normTensor = tf.tidy(() => tf.sqrt(sumAll(entries.map(([, g]) => tf.sum(tf.square(g))))));
  const norm = (await normTensor.data())[0];
  normTensor.dispose();
  const scale = Number.isFinite(norm) && norm > maxNorm ? maxNorm / norm : 1;
  const clipped: Record<string, tf.Tensor> = {};
  for (const [name, g] of entries) clipped[name] = scale === 1 ? tf.clone(g) : tf.tidy(() => tf.mul(g, scale));
  return { grads: clipped, norm };
}

/** Sum of scalars by pairwise adds (any backend, any count ≥ 1). */
function sumAll(terms: tf.Tensor[]): tf.Tensor {
  let level = terms;
  while (level.length > 1) {
    const next: tf.Tensor[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? tf.add(level[i], level[i + 1]) : level[i]);
    level = next;
  }
  return level[0];
}

function validateOptions(options: AdamWOptions): void {
  const checks: Array<[keyof AdamWOptions, boolean, string]> = [
    ['lr', options.lr > 0 && Number.isFinite(options.lr), 'a finite number > 0'],
    ['beta1', options.beta1 >= 0 && options.beta1 < 1, 'in [0, 1)'],
    ['beta2', options.beta2 >= 0 && options.beta2 < 1, 'in [0, 1)'],
    ['eps', options.eps > 0 && Number.isFinite(options.eps), 'a finite number > 0'],
    ['weightDecay', options.weightDecay >= 0 && Number.isFinite(options.weightDecay), 'a finite number ≥ 0'],
  ];
  for (const [field, ok, requirement] of checks) {
    if (!ok) throw new ConfigError(`AdamW option ${field} = ${options[field]} must be ${requirement}`, { context: { field } });
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
