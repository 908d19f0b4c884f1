/**
 * Seeded, serialisable random numbers (xoshiro128**). Every random choice in training goes through an
 * `Rng` so runs are reproducible and a checkpoint can restore the exact stream.
 */

/** 32-bit mix of several integers into one seed (for per-rollout streams: seed, iteration, group, k). */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h ^= Math.imul(((p | 0) ^ (p / 4294967296)) | 0, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

export class Rng {
  private s: Uint32Array;

  constructor(seed: number | readonly number[]) {
    this.s = new Uint32Array(4);
    if (typeof seed === 'number') {
      // splitmix32 expansion of one seed into four words.
      let x = seed >>> 0;
      for (let i = 0; i < 4; i++) {
        x = (x + 0x9e3779b9) >>> 0;
        let z = x;
        z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
        z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
        this.s[i] = (z ^ (z >>> 16)) >>> 0;
      }
      if (this.s.every((w) => w === 0)) this.s[0] = 1;
    } else {
      if (seed.length !== 4) throw new RangeError('Rng state must have 4 words');
      this.s.set(seed.map((w) => w >>> 0));
    }
  }

  /** The state, to store in a checkpoint and pass back to the constructor. */
  state(): number[] {
    return Array.from(this.s);
  }

  /** Continue from a `state()` taken earlier (e.g. rewind draws that were taken ahead and not used). */
  restore(state: readonly number[]): void {
    if (state.length !== 4) throw new RangeError('Rng state must have 4 words');
    this.s.set(state.map((w) => w >>> 0));
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!(n > 0)) throw new RangeError(`Rng.int needs n > 0, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    let u = this.next();
    while (u === 0) u = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** Fisher–Yates shuffle in place; returns the array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
