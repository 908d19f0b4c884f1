/**
 * Categorical value and reward targets (spec "Targets"; MuZero appendix F): a scalar x is scaled,
 * squashed by h(x) = sign(x)(√(|x| + 1) − 1) + εx (ε = 0.001), and two-hot encoded on the integer
 * support {−S, …, S}; a predicted distribution is decoded by its expectation and h⁻¹.
 *
 * `scale` multiplies scalars before h: the game's returns lie in [0, 1), so with the default scale 100
 * a return of 0.25 (a quarter of the time saved) sits at h(25) ≈ 4.12 on a support of S = 20, using the
 * bins instead of crowding into [0, 1].
 */

/** ε of the h-transform. */
export const H_EPSILON = 0.001;

/** h(x) = sign(x)(√(|x| + 1) − 1) + εx. */
export function hTransform(x: number): number {
  return Math.sign(x) * (Math.sqrt(Math.abs(x) + 1) - 1) + H_EPSILON * x;
}

/** h⁻¹(y) = sign(y)·(((√(1 + 4ε(|y| + 1 + ε)) − 1) / (2ε))² − 1), the exact inverse of {@link hTransform}. */
export function hInverse(y: number): number {
  const root = (Math.sqrt(1 + 4 * H_EPSILON * (Math.abs(y) + 1 + H_EPSILON)) - 1) / (2 * H_EPSILON);
  return Math.sign(y) * (root * root - 1);
}

/** A categorical support {−S..S} with a scalar scale; encodes targets and decodes predictions. */
export class CategoricalSupport {
  /** Number of bins, 2S + 1. */
  readonly size: number;

  constructor(
    /** S: the support is the integers −S..S. */
    readonly halfWidth: number,
    /** Scalars are multiplied by this before h (and divided after h⁻¹). */
    readonly scale: number,
  ) {
    if (!(Number.isInteger(halfWidth) && halfWidth >= 1))
      throw new RangeError(`support half-width S must be an integer ≥ 1, got ${halfWidth}`);
    if (!(scale > 0 && Number.isFinite(scale))) throw new RangeError(`support scale must be a finite number > 0, got ${scale}`);
    this.size = 2 * halfWidth + 1;
  }

  /**
   * Two-hot encode x into out[at .. at + size): y = clamp(h(scale·x), −S, S) splits its mass between
   * the two neighbouring integers ⌊y⌋ and ⌊y⌋ + 1 in proportion to closeness, so the bins sum to 1 and
   * their expectation is y (invariant 7). Other entries are left untouched (pass zeros).
   */
  encode(x: number, out: Float32Array, at = 0): void {
    const S = this.halfWidth;
    const y = Math.min(S, Math.max(-S, hTransform(this.scale * x)));
    const lower = Math.floor(y);
    const upperShare = y - lower;
    out[at + lower + S] += 1 - upperShare;
    if (upperShare > 0) out[at + lower + S + 1] += upperShare;
  }

  /** Inverse of the encoding for a probability vector p (sums to 1): h⁻¹(Σ_i p_i·(i − S)) / scale. */
  decodeProbabilities(probabilities: ArrayLike<number>, at = 0): number {
    let y = 0;
    for (let i = 0; i < this.size; i++) y += probabilities[at + i] * (i - this.halfWidth);
    return this.fromTransformed(y);
  }

  /** Scalar from an expected transformed value y = E[bin]: h⁻¹(y) / scale. */
  fromTransformed(y: number): number {
    return hInverse(y) / this.scale;
  }

  /** The bin values −S..S (for an on-device expectation). */
  binValues(): Float32Array {
    return Float32Array.from({ length: this.size }, (_, i) => i - this.halfWidth);
  }
}
