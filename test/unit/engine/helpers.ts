/**
 * Shared setup of the engine's tests: one Dawn device per test file (lavapipe in CI, the GPU on the GPU
 * machine). Where no adapter exists the suites are skipped with the reason, except in CI, where the
 * adapter is required (scripts/setup.sh installs lavapipe) and its absence fails the run.
 */
import { openEngineDevice, vulkanLoaderPresent, type EngineDevice } from '../../../models/engine/device.js';
import { Runtime } from '../../../models/engine/runtime.js';

let opened: Promise<Runtime | string> | undefined;

/** The shared runtime, or the reason there is none. */
export function engineRuntime(): Promise<Runtime | string> {
  opened ??= (async () => {
    if (!vulkanLoaderPresent()) return 'no Vulkan loader (libvulkan.so.1): run scripts/setup.sh to install lavapipe';
    try {
      const engine: EngineDevice = await openEngineDevice();
      return new Runtime(engine);
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  })();
  return opened;
}

/** Resolve the runtime once at collection time: `describe.skipIf(!runtime)`. */
export async function requireRuntime(): Promise<Runtime | undefined> {
  const rt = await engineRuntime();
  if (typeof rt === 'string') {
    if (process.env.CI) throw new Error(`the GPU engine's tests need a WebGPU adapter in CI (lavapipe): ${rt}`);
    console.warn(`engine tests skipped: ${rt}`);
    return undefined;
  }
  return rt;
}

/** Deterministic uniform numbers in [lo, hi). */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[k] = lo + ((s >>> 8) / 2 ** 24) * (hi - lo);
  }
  return out;
}

/** Largest |a − b| / (|b| + scale) over the arrays. */
export function maxRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>, scale = 1e-3): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} ≠ ${expected.length}`);
  let worst = 0;
  for (let k = 0; k < actual.length; k++) {
    const err = Math.abs(actual[k] - expected[k]) / (Math.abs(expected[k]) + scale);
    if (!(err <= worst)) worst = Number.isNaN(err) ? Number.POSITIVE_INFINITY : Math.max(worst, err);
  }
  return worst;
}
