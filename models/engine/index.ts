/**
 * horizon's own GPU engine on Dawn: the policy transformer's training step (and, next, decoding) as
 * hand-written WGSL kernels. `openEngine` decides whether this process uses it.
 */
import { openEngineDevice, vulkanLoaderPresent } from './device.js';
import { Runtime } from './runtime.js';

export { EngineModel, type EngineModelOptions, type EngineOptimizerOptions, type StepReport, type SurrogateBatch } from './model.js';
export { describeCapabilities, openEngineDevice, type EngineCapabilities } from './device.js';
export { Runtime } from './runtime.js';

/** The engine's runtime, or why this process does not use it. */
export interface EngineChoice {
  readonly runtime?: Runtime;
  readonly reason: string;
}

let shared: Promise<EngineChoice> | undefined;
let sharedRequest: string | undefined;

/**
 * Open the engine for a `backend` request: `engine` takes any adapter (a software one included, e.g.
 * lavapipe in tests); `auto` only a hardware GPU (on lavapipe wasm is faster). One runtime per process.
 */
export function openEngine(request: 'auto' | 'engine'): Promise<EngineChoice> {
  if (shared && sharedRequest === request) return shared;
  sharedRequest = request;
  shared = (async (): Promise<EngineChoice> => {
    if (!vulkanLoaderPresent()) return { reason: 'no Vulkan loader (libvulkan.so.1), so Dawn has no adapter' };
    try {
      const device = await openEngineDevice();
      if (request === 'auto' && device.caps.software) {
        device.device.destroy();
        return {
          reason: `the only adapter is a software rasteriser (${device.caps.adapter}); wasm is faster there (backend: engine forces it)`,
        };
      }
      return { runtime: new Runtime(device), reason: device.caps.adapter };
    } catch (err) {
      return { reason: err instanceof Error ? err.message : String(err) };
    }
  })();
  return shared;
}
