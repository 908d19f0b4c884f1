/// <reference types="@webgpu/types" />
/**
 * Opening a WebGPU device for horizon's own engine on Dawn (npm `webgpu`), and what it can do.
 *
 * Dawn's toggles that the engine needs on every adapter:
 *   allow_unsafe_apis            chromium-experimental-subgroup-matrix (tensor cores from WGSL)
 *   vulkan_enable_f16_on_nvidia  shader-f16 and f16 subgroup-matrix configs on NVIDIA's Vulkan driver
 *   skip_validation, disable_robustness, disable_workgroup_init
 *                                per-dispatch validation, bounds clamping and zeroing of workgroup memory
 *                                off (each kernel bounds-checks what it touches itself)
 * The adapter's features decide which kernels run; `describeCapabilities` is the log line that says so.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GpuError } from '../../core/errors.js';

/** The Dawn toggles the engine asks for (see the module comment). */
export const DAWN_TOGGLES = [
  'allow_unsafe_apis',
  'vulkan_enable_f16_on_nvidia',
  'skip_validation',
  'disable_robustness',
  'disable_workgroup_init',
];

/** One subgroup-matrix shape the adapter offers (Dawn's `adapter.info.subgroupMatrixConfigs`). */
export interface SubgroupMatrixConfig {
  readonly componentType: string;
  readonly resultComponentType: string;
  readonly M: number;
  readonly N: number;
  readonly K: number;
}

/** What the device can do, as far as kernel choice is concerned. */
export interface EngineCapabilities {
  /** `vendor architecture device` of the adapter, for logs and benchmark tables. */
  readonly adapter: string;
  /** Software rasteriser (lavapipe / SwiftShader): correct but slow. */
  readonly software: boolean;
  readonly shaderF16: boolean;
  readonly subgroups: boolean;
  /** f16 × f16 → f32 16×16×16 subgroup matrices (tensor cores), when offered. */
  readonly f16Matrix?: SubgroupMatrixConfig;
  readonly subgroupMinSize: number;
  readonly subgroupMaxSize: number;
  readonly timestamps: boolean;
  readonly maxStorageBufferBindingSize: number;
  readonly maxBufferSize: number;
  readonly maxStorageBuffersPerShaderStage: number;
  readonly maxComputeWorkgroupStorageSize: number;
  readonly maxComputeInvocationsPerWorkgroup: number;
  readonly minUniformBufferOffsetAlignment: number;
  readonly minStorageBufferOffsetAlignment: number;
}

/** An open device and its capabilities. */
export interface EngineDevice {
  readonly device: GPUDevice;
  readonly caps: EngineCapabilities;
  /** Set when the device is lost (the engine then refuses work with a GpuError). */
  lost?: string;
}

/** Options of `openEngineDevice`. */
export interface OpenOptions {
  /** Ask for the fallback (software) adapter, e.g. to test on lavapipe beside a real GPU. */
  readonly forceFallbackAdapter?: boolean;
  /** Pretend the adapter lacks these (to test the fallback kernels): 'shader-f16', 'subgroups', 'subgroup-matrix'. */
  readonly disable?: readonly string[];
}

/** Where the Vulkan loader is found on Debian/Ubuntu/RHEL-like systems (and LD_LIBRARY_PATH). */
export function vulkanLoaderPresent(): boolean {
  if (process.platform !== 'linux') return true;
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu',
    '/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
  ];
  return dirs.some((dir) => existsSync(join(dir, 'libvulkan.so.1')));
}

let gpuPromise: Promise<GPU> | undefined;

/** Dawn's GPU object with the engine's toggles (one per process), and the WebGPU globals installed. */
export function dawnGpu(): Promise<GPU> {
  gpuPromise ??= (async () => {
    if (!vulkanLoaderPresent()) throw new GpuError('no Vulkan loader (libvulkan.so.1) on this machine, so Dawn has no adapter');
    if (process.platform === 'linux' && process.env.XDG_RUNTIME_DIR === undefined) process.env.XDG_RUNTIME_DIR = '/tmp';
    const dawn = (await import('webgpu')) as unknown as { create(flags: string[]): GPU; globals: object };
    Object.assign(globalThis, dawn.globals);
    // Timestamps unquantised: the engine's profiler (Recorder profile mode) times single kernels.
    return dawn.create([`enable-dawn-features=${DAWN_TOGGLES.join(',')}`, 'disable-dawn-features=timestamp_quantization']);
  })();
  return gpuPromise;
}

/**
 * Open a device with every limit the adapter allows and the features the engine uses. Throws GpuError
 * when there is no adapter or the device cannot be created.
 */
export async function openEngineDevice(options: OpenOptions = {}): Promise<EngineDevice> {
  const gpu = await dawnGpu();
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance', forceFallbackAdapter: options.forceFallbackAdapter });
  if (adapter === null) throw new GpuError('Dawn found no GPU adapter (needs a Vulkan driver and libvulkan.so.1)');
  const disabled = new Set(options.disable ?? []);
  const wanted = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix', 'timestamp-query'].filter(
    (f) =>
      adapter.features.has(f) && !disabled.has(f) && !(f === 'chromium-experimental-subgroup-matrix' && disabled.has('subgroup-matrix')),
  );
  const limits: Record<string, number> = {};
  for (const name of [
    'maxStorageBufferBindingSize',
    'maxBufferSize',
    'maxStorageBuffersPerShaderStage',
    'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxComputeWorkgroupSizeY',
    'maxComputeWorkgroupsPerDimension',
    'maxBindGroups',
    'maxDynamicUniformBuffersPerPipelineLayout',
  ]) {
    limits[name] = (adapter.limits as unknown as Record<string, number>)[name];
  }
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures: wanted as GPUFeatureName[], requiredLimits: limits });
  } catch (cause) {
    throw new GpuError(`could not open a device on the adapter: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  const info = adapter.info as GPUAdapterInfo & {
    subgroupMatrixConfigs?: SubgroupMatrixConfig[];
    subgroupMinSize?: number;
    subgroupMaxSize?: number;
  };
  const hasMatrix = device.features.has('chromium-experimental-subgroup-matrix');
  const f16Matrix = hasMatrix
    ? (info.subgroupMatrixConfigs ?? []).find(
        (c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === 16 && c.N === 16 && c.K === 16,
      )
    : undefined;
  const label = [info.vendor, info.architecture, info.device || info.description].filter(Boolean).join(' ');
  const software = /llvmpipe|lavapipe|swiftshader|software/i.test(`${info.architecture} ${info.device} ${info.description}`);
  const dl = device.limits;
  const engine: EngineDevice = {
    device,
    caps: {
      adapter: label || 'unknown adapter',
      software,
      shaderF16: device.features.has('shader-f16'),
      subgroups: device.features.has('subgroups'),
      f16Matrix: f16Matrix && device.features.has('shader-f16') ? { ...f16Matrix } : undefined,
      timestamps: device.features.has('timestamp-query'),
      subgroupMinSize: info.subgroupMinSize ?? 4,
      subgroupMaxSize: info.subgroupMaxSize ?? 128,
      maxStorageBufferBindingSize: dl.maxStorageBufferBindingSize,
      maxBufferSize: dl.maxBufferSize,
      maxStorageBuffersPerShaderStage: dl.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: dl.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: dl.maxComputeInvocationsPerWorkgroup,
      minUniformBufferOffsetAlignment: dl.minUniformBufferOffsetAlignment,
      minStorageBufferOffsetAlignment: dl.minStorageBufferOffsetAlignment,
    },
  };
  void device.lost.then((info) => {
    engine.lost = `${info.reason}: ${info.message}`;
  });
  return engine;
}

/** One line for the run log: the adapter and which matmul path the engine takes, and why. */
export function describeCapabilities(caps: EngineCapabilities, matmulPath: string): string {
  const features = [
    caps.shaderF16 ? 'shader-f16' : 'no shader-f16',
    caps.subgroups ? 'subgroups' : 'no subgroups',
    caps.f16Matrix ? 'f16 subgroup matrices 16×16×16' : 'no f16 subgroup matrices',
  ];
  return `${caps.adapter}${caps.software ? ' (software)' : ''}: ${features.join(', ')} → ${matmulPath}`;
}
