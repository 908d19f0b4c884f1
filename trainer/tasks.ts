/**
 * Task sampling (LOOP step 1): uniformly without replacement from the training pool, reshuffled each
 * epoch. The state is two integers, so a checkpoint restores the exact stream.
 */
import { Rng, mixSeed } from '../core/rng.js';
import type { TaskRef } from '../envs/types.js';

/** Serialisable position in the task stream. */
export interface TaskSamplerState {
  readonly epoch: number;
  readonly offset: number;
}

/** Draws task indices epoch by epoch; every index appears once per epoch. */
export class TaskSampler {
  private epoch: number;
  private offset: number;
  private order: Uint32Array;

  constructor(
    private readonly split: string,
    private readonly poolSize: number,
    private readonly seed: number,
    state: TaskSamplerState = { epoch: 0, offset: 0 },
  ) {
    if (!(poolSize > 0)) throw new RangeError(`split "${split}" has no tasks`);
    this.epoch = state.epoch;
    this.offset = state.offset;
    this.order = this.permutation(this.epoch);
  }

  /** The next `n` tasks (crossing into a new, reshuffled epoch when the pool runs out). */
  next(n: number): TaskRef[] {
    const out: TaskRef[] = [];
    while (out.length < n) {
      if (this.offset >= this.poolSize) {
        this.epoch += 1;
        this.offset = 0;
        this.order = this.permutation(this.epoch);
      }
      const index = this.order[this.offset++];
      out.push({ split: this.split, index, seed: this.seed });
    }
    return out;
  }

  state(): TaskSamplerState {
    return { epoch: this.epoch, offset: this.offset };
  }

  private permutation(epoch: number): Uint32Array {
    const order = new Uint32Array(this.poolSize);
    for (let i = 0; i < order.length; i++) order[i] = i;
    const rng = new Rng(mixSeed(this.seed, epoch, 0x7a5c));
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    return order;
  }
}
