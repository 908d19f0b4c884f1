/**
 * Chooses and activates the tfjs backend for this process.
 *
 * Preference for `auto`, fastest first:
 *   1. `webgpu`     — `@tensorflow/tfjs-backend-webgpu` on Dawn (npm `webgpu`) when a GPU adapter exists.
 *   2. `tensorflow` — `@tensorflow/tfjs-node-gpu` or `@tensorflow/tfjs-node`, when installed with its
 *                     native library (optional; usually absent).
 *   3. `wasm`       — `@tensorflow/tfjs-backend-wasm` (SIMD, one thread in Node).
 *   4. `cpu`        — pure JavaScript, last resort.
 * An explicit request is honoured or fails with a ServiceError that says what is missing.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join, sep } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ServiceError } from '../core/errors.js';
import { vulkanLoaderPresent } from './engine/device.js';

/**
 * What a config may ask for (`backend` / `--backend`). `engine` is horizon's own WebGPU engine
 * (models/engine/): the learner trains on it, and tfjs — needed only for the CPU-side parts — then runs
 * on wasm (or cpu).
 */
export type BackendRequest = 'auto' | 'engine' | 'webgpu' | 'tensorflow' | 'wasm' | 'cpu';

/** The tfjs backend names this module can activate. */
export type BackendName = 'webgpu' | 'tensorflow' | 'wasm' | 'cpu';

/** The active backend and a one-line explanation of why it was chosen (for the run log). */
export interface BackendChoice {
  readonly name: BackendName;
  readonly reason: string;
}

/** Outcome of trying one backend: the reason line on success, what is missing on failure. */
type Attempt = { ok: true; reason: string } | { ok: false; missing: string; cause?: unknown };

let lastSelection: { requested: BackendRequest; choice: Promise<BackendChoice> } | undefined;

/**
 * Activate the backend for `requested` and say which one and why. Calling again with the same request
 * while that backend is still active returns the same choice without doing anything.
 */
export function selectBackend(requested: BackendRequest): Promise<BackendChoice> {
  if (lastSelection && lastSelection.requested === requested) {
    const previous = lastSelection.choice;
    return previous.then(
      (choice) => (tf.getBackend() === choice.name ? choice : startSelection(requested)),
      () => startSelection(requested),
    );
  }
  return startSelection(requested);
}

function startSelection(requested: BackendRequest): Promise<BackendChoice> {
  const choice = runSelection(requested);
  lastSelection = { requested, choice };
  return choice;
}

async function runSelection(requested: BackendRequest): Promise<BackendChoice> {
  if (requested === 'auto') return selectAuto();
  if (requested === 'engine') {
    // The engine owns the GPU; tfjs takes the CPU for what remains (evaluation, the reference policy's helpers).
    for (const name of ['wasm', 'cpu'] as const) {
      const attempt = await tryBackend(name);
      if (attempt.ok) return { name, reason: `tfjs beside the GPU engine: ${attempt.reason}` };
    }
    throw new ServiceError('no CPU tfjs backend (wasm or cpu) could be started beside the GPU engine');
  }
  const attempt = await tryBackend(requested);
  if (attempt.ok) return { name: requested, reason: `requested ${requested}: ${attempt.reason}` };
  throw new ServiceError(`backend '${requested}' was requested but is unavailable: ${attempt.missing}`, {
    cause: attempt.cause,
    context: { requested },
  });
}

async function selectAuto(): Promise<BackendChoice> {
  const skipped: string[] = [];
  for (const name of ['webgpu', 'tensorflow', 'wasm', 'cpu'] as const) {
    const attempt = name === 'webgpu' ? await tryWebGpu({ hardwareOnly: true }) : await tryBackend(name);
    if (attempt.ok) {
      const because = skipped.length ? ` (${skipped.join('; ')})` : '';
      return { name, reason: `auto: ${attempt.reason}${because}` };
    }
    skipped.push(`no ${name}: ${attempt.missing}`);
  }
  throw new ServiceError(`no tfjs backend could be started: ${skipped.join('; ')}`);
}

function tryBackend(name: BackendName): Promise<Attempt> {
  switch (name) {
    case 'webgpu':
      return tryWebGpu();
    case 'tensorflow':
      return tryTensorflowNative();
    case 'wasm':
      return tryWasm();
    case 'cpu':
      return tryCpu();
  }
}

/** Activate an already registered backend; false when its factory fails (tfjs logs the error). */
async function activate(name: BackendName): Promise<boolean> {
  if (tf.findBackendFactory(name) === null) return false;
  const ok = await tf.setBackend(name);
  await tf.ready();
  return ok && tf.getBackend() === name;
}

// ---------------------------------------------------------------------------------------------------
// webgpu

/** Minimal view of the WebGPU objects we touch (the DOM typings are not part of this project). */
interface GpuAdapterLike {
  readonly info?: { vendor?: string; architecture?: string; device?: string; description?: string };
}
interface GpuLike {
  requestAdapter(options?: { powerPreference?: string }): Promise<GpuAdapterLike | null>;
}

let dawnGpu: GpuLike | undefined;

async function tryWebGpu(options: { hardwareOnly?: boolean } = {}): Promise<Attempt> {
  // Without a Vulkan loader Dawn can only fail, and it says so on stderr: skip it quietly on Linux.
  if (process.platform === 'linux' && !vulkanLoaderPresent()) {
    return { ok: false, missing: 'no Vulkan loader (libvulkan.so.1) on this machine, so no GPU adapter' };
  }
  let gpu: GpuLike;
  try {
    gpu = await installDawnNavigator();
  } catch (cause) {
    return { ok: false, missing: `the Dawn addon (npm package 'webgpu') failed to load: ${messageOf(cause)}`, cause };
  }
  let adapter: GpuAdapterLike | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (cause) {
    return { ok: false, missing: `requesting a GPU adapter failed: ${messageOf(cause)}`, cause };
  }
  if (adapter === null) {
    return { ok: false, missing: 'Dawn found no GPU adapter (needs a GPU with a Vulkan driver and libvulkan.so.1)' };
  }
  if (options.hardwareOnly && isSoftwareAdapter(adapter)) {
    // Mesa's lavapipe: correct, but slower than wasm for tfjs. It is there for the engine's tests.
    return {
      ok: false,
      missing: `the only adapter is a software rasteriser (${adapter.info?.device ?? adapter.info?.description ?? 'lavapipe'}), slower than wasm`,
    };
  }
  try {
    // The backend registers itself at import time only if navigator.gpu already exists.
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!(await activate('webgpu'))) return { ok: false, missing: 'the tfjs webgpu backend failed to initialise on the adapter' };
  } catch (cause) {
    return { ok: false, missing: `the tfjs webgpu backend failed to start: ${messageOf(cause)}`, cause };
  }
  const info = adapter.info;
  const label = info ? [info.vendor, info.architecture, info.device || info.description].filter(Boolean).join(' ') : '';
  return { ok: true, reason: `GPU adapter found${label ? ` (${label})` : ''}` };
}

/** lavapipe / llvmpipe / SwiftShader: Vulkan on the CPU. */
export function isSoftwareAdapter(adapter: GpuAdapterLike): boolean {
  const info = adapter.info ?? {};
  return /llvmpipe|lavapipe|swiftshader|software/i.test(`${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`);
}

/** Load Dawn and expose it as `navigator.gpu` plus the WebGPU globals (GPUBufferUsage, …). */
async function installDawnNavigator(): Promise<GpuLike> {
  if (dawnGpu) return dawnGpu;
  const dawn = (await import('webgpu')) as unknown as { create(flags: string[]): GpuLike; globals: object };
  const gpu = dawn.create([]);
  Object.assign(globalThis, dawn.globals);
  const existing = (globalThis as { navigator?: object }).navigator;
  if (existing) {
    // Node ≥ 21 has a read-only global navigator; add gpu to it rather than replacing it.
    Object.defineProperty(existing, 'gpu', { value: gpu, configurable: true, writable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  }
  dawnGpu = gpu;
  return gpu;
}

// ---------------------------------------------------------------------------------------------------
// tensorflow (native libtensorflow bindings)

async function tryTensorflowNative(): Promise<Attempt> {
  const failures: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      // A variable specifier keeps TypeScript and bundlers from requiring the optional package.
      const specifier: string = pkg;
      await import(specifier);
    } catch (cause) {
      failures.push(isModuleNotFound(cause, pkg) ? `${pkg} is not installed` : `${pkg} failed to load (${firstLine(messageOf(cause))})`);
      continue;
    }
    if (tf.findBackendFactory('tensorflow') === null) {
      failures.push(`${pkg} loaded but registered its backend with a different copy of @tensorflow/tfjs-core (deduplicate it to 4.22)`);
      continue;
    }
    if (await activate('tensorflow')) return { ok: true, reason: `native TensorFlow via ${pkg}` };
    failures.push(`${pkg} loaded but its backend failed to initialise`);
  }
  return { ok: false, missing: failures.join('; ') };
}

// ---------------------------------------------------------------------------------------------------
// wasm

let wasmPathsSet = false;

async function tryWasm(): Promise<Attempt> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (!wasmPathsSet) {
      wasm.setWasmPaths(wasmBinaryDirectory());
      wasmPathsSet = true;
    }
    if (!(await activate('wasm'))) return { ok: false, missing: 'the wasm backend failed to initialise' };
  } catch (cause) {
    return { ok: false, missing: `@tensorflow/tfjs-backend-wasm failed to load: ${messageOf(cause)}`, cause };
  }
  return { ok: true, reason: 'wasm (SIMD, single-threaded in Node)' };
}

/** Absolute directory holding the .wasm binaries, with a trailing separator as setWasmPaths expects. */
function wasmBinaryDirectory(): string {
  const require = createRequire(import.meta.url);
  try {
    const packageRoot = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
    return join(packageRoot, 'dist') + sep;
  } catch {
    // A bundled build (scripts/bundle-gpu.sh) has no node_modules: the binaries sit next to the bundle.
    return dirname(fileURLToPath(import.meta.url)) + sep;
  }
}

// ---------------------------------------------------------------------------------------------------
// cpu

async function tryCpu(): Promise<Attempt> {
  try {
    await import('@tensorflow/tfjs-backend-cpu');
    if (!(await activate('cpu'))) return { ok: false, missing: 'the cpu backend failed to initialise' };
  } catch (cause) {
    return { ok: false, missing: `@tensorflow/tfjs-backend-cpu failed to load: ${messageOf(cause)}`, cause };
  }
  return { ok: true, reason: 'pure-JavaScript cpu (slowest)' };
}

/** True when `err` says that `pkg` itself is missing (not one of its own dependencies). */
function isModuleNotFound(err: unknown, pkg: string): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && messageOf(err).includes(`'${pkg}'`);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function firstLine(text: string): string {
  const newline = text.indexOf('\n');
  return newline < 0 ? text : text.slice(0, newline);
}

/** The parts of tfjs-webgpu's buffer pool that `trimGpuBufferPool` touches. */
export interface WebGpuBufferPool {
  freeBuffers: Map<string, Array<{ size: number; destroy(): void }>>;
  numFreeBuffers: number;
  numBytesAllocated: number;
  numBytesUsed: number;
}

/**
 * tfjs-webgpu keeps every released GPU buffer in a pool keyed by its exact byte size and never frees it.
 * With shapes that change from step to step (sequence lengths of minibatches, a KV cache growing by one
 * token per step) the pool grows without bound until the device runs out of memory. This destroys the
 * pooled free buffers once they hold more than `maxFreeBytes`; buffers in use are untouched. A no-op on
 * other backends. Returns the bytes freed.
 */
export function trimGpuBufferPool(maxFreeBytes = 512 * 2 ** 20): number {
  if (tf.getBackend() !== 'webgpu') return 0;
  const pool = (tf.backend() as unknown as { bufferManager?: WebGpuBufferPool }).bufferManager;
  return pool?.freeBuffers ? trimBufferPool(pool, maxFreeBytes) : 0;
}

/** `trimGpuBufferPool` on a given pool (exported for tests). */
export function trimBufferPool(pool: WebGpuBufferPool, maxFreeBytes: number): number {
  const free = pool.numBytesAllocated - pool.numBytesUsed;
  if (free <= maxFreeBytes) return 0;
  let freed = 0;
  for (const buffers of pool.freeBuffers.values()) {
    for (const buffer of buffers) {
      buffer.destroy();
      freed += buffer.size;
    }
    // Keep the (now empty) entries: the pool's release path returns early when the map is empty.
    buffers.length = 0;
  }
  pool.numFreeBuffers = 0;
  pool.numBytesAllocated -= freed;
  return freed;
}
