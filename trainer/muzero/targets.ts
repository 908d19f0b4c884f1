/**
 * n-step bootstrapped value targets (spec "Targets"; MuZero appendix G):
 *
 *   z_t = Σ_{i<n} γ^i · u_{t+1+i} + γ^n · ν_{t+n}
 *
 * u_{t+1} is the reward of the action taken at t (`rewards[t]`), ν_t the search value at t
 * (`rootValues[t]`); rewards and values past the terminal state are 0, so z_t = 0 for t ≥ L
 * (invariant 9). With γ = 1 and n ≥ L this is the Monte-Carlo return.
 */

/** z_t for t = 0..L−1 (L = rewards.length). */
export function nStepValueTargets(
  rewards: ArrayLike<number>,
  rootValues: ArrayLike<number>,
  tdSteps: number,
  discount: number,
): Float32Array {
  const L = rewards.length;
  if (rootValues.length !== L) throw new RangeError(`nStepValueTargets: ${L} rewards but ${rootValues.length} root values`);
  if (!(Number.isInteger(tdSteps) && tdSteps >= 1))
    throw new RangeError(`nStepValueTargets: tdSteps must be an integer ≥ 1, got ${tdSteps}`);
  const out = new Float32Array(L);
  for (let t = 0; t < L; t++) out[t] = valueTargetAt(rewards, rootValues, t, tdSteps, discount);
  return out;
}

/** z_t for any t ≥ 0 (0 at and past the end). */
export function valueTargetAt(
  rewards: ArrayLike<number>,
  rootValues: ArrayLike<number>,
  t: number,
  tdSteps: number,
  discount: number,
): number {
  const L = rewards.length;
  if (t >= L) return 0;
  let z = 0;
  let g = 1;
  for (let i = 0; i < tdSteps; i++) {
    if (t + i < L) z += g * rewards[t + i];
    g *= discount;
  }
  if (t + tdSteps < L) z += g * rootValues[t + tdSteps];
  return z;
}
