/// <reference types="@webgpu/types" />
/**
 * The engine's runtime: tensors as ranges of a few large GPU buffers, compute kernels built once, and a
 * recorder that puts a whole training or decode step into one compute pass and one submit.
 *
 *   Tensor    a [shape] view of `bytes` bytes at `offset` (256-aligned) of an Arena's GPUBuffer
 *   Arena     one GPUBuffer, bump-allocated; `reset()` frees everything in it at once
 *   Kernel    a WGSL compute pipeline whose binding 0 is a Params uniform (dynamic offset) and bindings
 *             1..n storage buffers; built once per distinct source and cached
 *   Recorder  dispatches (kernel, tensors, scalar params, workgroups): params go into one uniform ring
 *             uploaded with one writeBuffer, bind groups are cached by (kernel, tensor ranges), and
 *             everything runs in one compute pass of one command encoder, one submit
 * Reading back goes through MAP_READ staging buffers that the step never waits on (`readLater`).
 */
import { GpuError } from '../../core/errors.js';
import type { EngineDevice } from './device.js';

/** Element type of a tensor (all 4 bytes except f16). */
export type DType = 'f32' | 'f16' | 'i32' | 'u32';

const BYTES: Record<DType, number> = { f32: 4, f16: 2, i32: 4, u32: 4 };

/** A view of part of an arena. Immutable; the arena owns the memory. */
export interface Tensor {
  readonly buffer: GPUBuffer;
  /** Identity of the buffer (bind-group cache key). */
  readonly bufferId: number;
  /** Byte offset in the buffer, a multiple of the storage-offset alignment. */
  readonly offset: number;
  /** Bytes bound (≥ the elements' bytes, rounded up to 4). */
  readonly bytes: number;
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  readonly label: string;
}

let nextBufferId = 1;

/**
 * One GPUBuffer carved into tensors by a bump pointer. Allocation failures (out of memory, a buffer
 * larger than the device allows) become a GpuError naming the arena and the bytes asked for.
 */
export class Arena {
  readonly buffer: GPUBuffer;
  readonly id: number;
  readonly capacity: number;
  private used = 0;

  constructor(
    private readonly engine: EngineDevice,
    readonly label: string,
    capacity: number,
    usage: number = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  ) {
    const align = engine.caps.minStorageBufferOffsetAlignment;
    this.capacity = Math.max(align, Math.ceil(capacity / align) * align);
    if (this.capacity > engine.caps.maxBufferSize) {
      throw new GpuError(
        `arena '${label}' needs ${formatBytes(this.capacity)}, more than this device's largest buffer (${formatBytes(engine.caps.maxBufferSize)})`,
        {
          context: { arena: label, bytes: this.capacity },
        },
      );
    }
    this.buffer = createBufferChecked(engine, { label, size: this.capacity, usage });
    this.id = nextBufferId++;
  }

  /** Bytes handed out so far. */
  get bytesUsed(): number {
    return this.used;
  }

  /** Bytes an allocation of `size` elements of `dtype` takes in an arena (alignment included). */
  static footprint(engine: EngineDevice, size: number, dtype: DType): number {
    const align = engine.caps.minStorageBufferOffsetAlignment;
    return Math.ceil(Math.max(4, size * BYTES[dtype]) / align) * align;
  }

  /** A new tensor in this arena (contents undefined until written). */
  alloc(label: string, shape: readonly number[], dtype: DType = 'f32'): Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    const bytes = Math.ceil(Math.max(4, size * BYTES[dtype]) / 4) * 4;
    const footprint = Arena.footprint(this.engine, size, dtype);
    if (this.used + footprint > this.capacity) {
      throw new GpuError(
        `arena '${this.label}' is full: '${label}' [${shape.join(', ')}] needs ${formatBytes(footprint)}, ${formatBytes(this.capacity - this.used)} of ${formatBytes(this.capacity)} left`,
        {
          context: { arena: this.label, tensor: label, bytes: footprint },
        },
      );
    }
    if (bytes > this.engine.caps.maxStorageBufferBindingSize) {
      throw new GpuError(
        `tensor '${label}' [${shape.join(', ')}] is ${formatBytes(bytes)}, more than one binding may hold on this device (${formatBytes(this.engine.caps.maxStorageBufferBindingSize)})`,
        {
          context: { tensor: label, bytes },
        },
      );
    }
    const tensor: Tensor = { buffer: this.buffer, bufferId: this.id, offset: this.used, bytes, shape: [...shape], dtype, size, label };
    this.used += footprint;
    return tensor;
  }

  /** Forget every allocation (the tensors handed out must not be used again). */
  reset(): void {
    this.used = 0;
  }

  destroy(): void {
    this.buffer.destroy();
  }
}

/**
 * A kernel-source generator whose results are cached by its arguments: generating WGSL costs ~100 µs,
 * which would otherwise be paid on every dispatch of a step.
 */
export function memoizeSpec<A extends readonly unknown[]>(generate: (...args: A) => KernelSpec): (...args: A) => KernelSpec {
  const cache = new Map<string, KernelSpec>();
  return (...args: A) => {
    const key = JSON.stringify(args);
    let spec = cache.get(key);
    if (!spec) {
      spec = generate(...args);
      cache.set(key, spec);
    }
    return spec;
  };
}

/** Whether a binding is only read by the kernel or also written. */
export type Access = 'read' | 'rw';

/** A compute kernel: WGSL source whose `@binding(0)` is `var<uniform> P: Params` and 1..n storage buffers. */
export interface KernelSpec {
  /** Unique name of this source variant (cache key), e.g. `matmul_nt_f32_64x64`. */
  readonly name: string;
  readonly code: string;
  /** Access of bindings 1..n, in order. */
  readonly bindings: readonly Access[];
  readonly entryPoint?: string;
}

/** A built kernel. */
export interface Kernel {
  readonly id: number;
  readonly name: string;
  readonly pipeline: GPUComputePipeline;
  readonly bindings: readonly Access[];
}

/**
 * Scalar parameters of one dispatch, in the order of the fields of the kernel's `Params` struct (all
 * 4-byte scalars: `u32`, `i32` or `f32`). Written as `[value, type]` pairs.
 */
export type Param = readonly [number, 'u32' | 'i32' | 'f32'];

/** Helpers to write params tersely: u(3), i(-1), f(0.5). */
export const u = (v: number): Param => [v, 'u32'];
export const i = (v: number): Param => [v, 'i32'];
export const f = (v: number): Param => [v, 'f32'];

/** Bytes of uniform space each dispatch gets (Params ≤ 64 scalars). */
const PARAM_SLOT = 256;

/** The engine runtime over one device. */
export class Runtime {
  readonly device: GPUDevice;
  private readonly kernels = new Map<string, Promise<Kernel>>();
  private readonly layouts = new Map<string, GPUBindGroupLayout>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private uniform: GPUBuffer;
  private uniformId: number;
  private uniformSlots: number;
  private nextKernelId = 1;
  private readonly staging: GPUBuffer[] = [];
  /** Dispatches recorded since the engine started (for benchmarks). */
  dispatchCount = 0;

  constructor(readonly engine: EngineDevice) {
    this.device = engine.device;
    this.uniformSlots = 16384;
    this.uniform = this.createUniform(this.uniformSlots);
    this.uniformId = nextBufferId++;
  }

  /**
   * Build (or fetch the cached) kernel. Throws GpuError with the compiler's messages on bad WGSL. The
   * shader is checked before the pipeline is made: with `skip_validation` an invalid module would take
   * the process down instead of reporting an error.
   */
  kernel(spec: KernelSpec): Promise<Kernel> {
    let pending = this.kernels.get(spec.name);
    if (!pending) {
      pending = this.build(spec);
      this.kernels.set(spec.name, pending);
      pending.catch(() => this.kernels.delete(spec.name));
    }
    return pending;
  }

  private async build(spec: KernelSpec): Promise<Kernel> {
    this.assertLive();
    const layoutKey = spec.bindings.join(',');
    let layout = this.layouts.get(layoutKey);
    if (!layout) {
      layout = this.device.createBindGroupLayout({
        label: `layout ${layoutKey}`,
        entries: [
          { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true, minBindingSize: 0 } },
          ...spec.bindings.map((access, k) => ({
            binding: k + 1,
            visibility: GPUShaderStage.COMPUTE,
            buffer: { type: access === 'read' ? ('read-only-storage' as const) : ('storage' as const) },
          })),
        ],
      });
      this.layouts.set(layoutKey, layout);
    }
    // The scope keeps Dawn from printing the compiler's error as an uncaptured one; it is reported below.
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ label: spec.name, code: spec.code });
    const info = await module.getCompilationInfo();
    await this.device.popErrorScope();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length > 0) {
      const lines = spec.code.split('\n');
      const messages = errors.map((m) => `  ${m.lineNum}:${m.linePos}: ${m.message}\n    ${lines[m.lineNum - 1]?.trim() ?? ''}`).join('\n');
      throw new GpuError(`kernel '${spec.name}' failed to compile:\n${messages}`, { context: { kernel: spec.name } });
    }
    this.device.pushErrorScope('validation');
    const pipeline = this.device.createComputePipeline({
      label: spec.name,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: spec.entryPoint ?? 'main' },
    });
    const error = await this.device.popErrorScope();
    if (error) throw new GpuError(`kernel '${spec.name}' failed to build: ${error.message}`, { context: { kernel: spec.name } });
    return { id: this.nextKernelId++, name: spec.name, pipeline, bindings: spec.bindings };
  }

  /** A recorder for one step (one encoder, one compute pass, one submit). */
  record(label = 'step'): Recorder {
    this.assertLive();
    return new Recorder(this, label, 16384, this.profiling ? this.profile : undefined);
  }

  /**
   * Profile mode (needs the adapter's timestamp-query): every dispatch runs in a pass of its own with
   * GPU timestamps, and the time per kernel accumulates here until `takeProfile()`. Slower; for bench/.
   */
  profiling = false;
  private readonly profile = new Map<string, { calls: number; ns: number }>();

  /** Kernel times recorded in profile mode since the last call, slowest first. */
  takeProfile(): { kernel: string; calls: number; ms: number }[] {
    const rows = [...this.profile.entries()].map(([kernel, v]) => ({ kernel, calls: v.calls, ms: v.ns / 1e6 }));
    this.profile.clear();
    return rows.sort((a, b) => b.ms - a.ms);
  }

  /** Upload `data` into `tensor` (queue order: before the next submit). */
  write(tensor: Tensor, data: ArrayBufferView): void {
    this.assertLive();
    if (data.byteLength > tensor.bytes)
      throw new RangeError(`writing ${data.byteLength} bytes into '${tensor.label}' of ${tensor.bytes} bytes`);
    // writeBuffer needs a multiple of 4 bytes.
    if (data.byteLength % 4 !== 0) {
      const padded = new Uint8Array(Math.ceil(data.byteLength / 4) * 4);
      padded.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      this.device.queue.writeBuffer(tensor.buffer, tensor.offset, padded);
      return;
    }
    this.device.queue.writeBuffer(tensor.buffer, tensor.offset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Read a tensor back (waits for all submitted work). f32 → Float32Array, i32 → Int32Array, u32 → Uint32Array, f16 → Uint16Array bits. */
  async read(tensor: Tensor): Promise<Float32Array | Int32Array | Uint32Array | Uint16Array> {
    const rec = this.record('read');
    const pending = rec.readLater(tensor);
    rec.submit();
    return pending;
  }

  /** Read `tensor` as numbers (f16 decoded). */
  async readNumbers(tensor: Tensor): Promise<Float32Array> {
    const data = await this.read(tensor);
    if (tensor.dtype === 'f16') return decodeF16(data as Uint16Array);
    return data instanceof Float32Array ? data : Float32Array.from(data);
  }

  /** @internal Uniform ring for a recorder with `slots` dispatches. */
  uniformFor(slots: number): { buffer: GPUBuffer; id: number } {
    if (slots > this.uniformSlots) {
      this.uniform.destroy();
      this.uniformSlots = Math.max(slots, this.uniformSlots * 2);
      this.uniform = this.createUniform(this.uniformSlots);
      this.uniformId = nextBufferId++;
    }
    return { buffer: this.uniform, id: this.uniformId };
  }

  /** @internal The cached bind group for (kernel, uniform, tensors). */
  bindGroup(kernel: Kernel, uniform: { buffer: GPUBuffer; id: number }, tensors: readonly Tensor[]): GPUBindGroup {
    let key = `${kernel.bindings.join(',')}|${uniform.id}`;
    for (const t of tensors) key += `|${t.bufferId}:${t.offset}:${t.bytes}`;
    let group = this.bindGroups.get(key);
    if (!group) {
      group = this.device.createBindGroup({
        layout: kernel.pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: uniform.buffer, offset: 0, size: PARAM_SLOT } },
          ...tensors.map((t, k) => ({ binding: k + 1, resource: { buffer: t.buffer, offset: t.offset, size: t.bytes } })),
        ],
      });
      if (this.bindGroups.size > 50_000) this.bindGroups.clear();
      this.bindGroups.set(key, group);
    }
    return group;
  }

  /** @internal A MAP_READ staging buffer of at least `bytes`. */
  takeStaging(bytes: number): GPUBuffer {
    const index = this.staging.findIndex((b) => b.size >= bytes && b.size <= Math.max(bytes * 4, 1 << 16));
    if (index >= 0) return this.staging.splice(index, 1)[0];
    return createBufferChecked(this.engine, {
      label: 'staging',
      size: Math.max(256, Math.ceil(bytes / 256) * 256),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
  }

  /** @internal Return a staging buffer to the pool. */
  giveStaging(buffer: GPUBuffer): void {
    if (this.staging.length < 64) this.staging.push(buffer);
    else buffer.destroy();
  }

  /** Throws GpuError if the device was lost. */
  assertLive(): void {
    if (this.engine.lost !== undefined) {
      throw new GpuError(
        `the GPU device was lost (${this.engine.lost}); restart the process (the learner resumes from its last checkpoint)`,
        { retryable: true },
      );
    }
  }

  /** Drop cached bind groups that reference `bufferId` (call before destroying an arena). */
  forgetBuffer(bufferId: number): void {
    for (const key of [...this.bindGroups.keys()]) if (key.includes(`|${bufferId}:`)) this.bindGroups.delete(key);
  }

  private createUniform(slots: number): GPUBuffer {
    return createBufferChecked(this.engine, {
      label: 'params',
      size: slots * PARAM_SLOT,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
  }
}

/**
 * Records one step. Dispatches go into one compute pass; copies and read-backs close the pass and open
 * the next one. `submit()` uploads the params and submits everything at once.
 */
export class Recorder {
  private readonly encoder: GPUCommandEncoder;
  private pass: GPUComputePassEncoder | undefined;
  /** Params of the dispatches so far (grown by doubling; uploaded once at submit). */
  private params: ArrayBuffer;
  private view: DataView;
  private slots = 0;
  private readonly uniform: { buffer: GPUBuffer; id: number };
  private readonly maxSlots: number;
  private readonly afterSubmit: (() => void)[] = [];
  private submitted = false;

  private readonly timed: string[] = [];
  private querySet: GPUQuerySet | undefined;

  constructor(
    private readonly runtime: Runtime,
    label: string,
    maxDispatches = 16384,
    private readonly profile?: Map<string, { calls: number; ns: number }>,
  ) {
    this.maxSlots = maxDispatches;
    this.uniform = runtime.uniformFor(maxDispatches);
    this.params = new ArrayBuffer(Math.min(maxDispatches, 512) * PARAM_SLOT);
    this.view = new DataView(this.params);
    this.encoder = runtime.device.createCommandEncoder({ label });
  }

  /** Dispatches recorded so far. */
  get dispatches(): number {
    return this.slots;
  }

  /**
   * Record one dispatch of `kernel` over `workgroups` ([x, y, z]; a single number is [x, 1, 1]) with
   * `tensors` bound at 1..n and `params` as its Params uniform.
   */
  dispatch(
    kernel: Kernel,
    tensors: readonly Tensor[],
    params: readonly Param[],
    workgroups: number | readonly [number, number?, number?],
  ): void {
    if (this.submitted) throw new Error('this recorder was already submitted');
    if (tensors.length !== kernel.bindings.length) {
      throw new RangeError(`kernel '${kernel.name}' binds ${kernel.bindings.length} tensors, got ${tensors.length}`);
    }
    if (this.slots >= this.maxSlots) throw new RangeError(`more than ${this.maxSlots} dispatches in one step`);
    const [x, y = 1, z = 1] = typeof workgroups === 'number' ? [workgroups] : workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const slot = this.slots++;
    const base = slot * PARAM_SLOT;
    if (base + PARAM_SLOT > this.params.byteLength) {
      const grown = new ArrayBuffer(Math.min(this.maxSlots, 2 * (this.params.byteLength / PARAM_SLOT)) * PARAM_SLOT);
      new Uint8Array(grown).set(new Uint8Array(this.params));
      this.params = grown;
      this.view = new DataView(grown);
    }
    if (params.length * 4 > PARAM_SLOT) throw new RangeError(`kernel '${kernel.name}': more than ${PARAM_SLOT / 4} params`);
    params.forEach(([value, type], k) => {
      if (type === 'f32') this.view.setFloat32(base + 4 * k, value, true);
      else if (type === 'i32') this.view.setInt32(base + 4 * k, value, true);
      else this.view.setUint32(base + 4 * k, value, true);
    });
    if (this.profile && this.runtime.engine.caps.timestamps && this.timed.length < 2048) {
      this.endPass();
      this.querySet ??= this.runtime.device.createQuerySet({ type: 'timestamp', count: 4096 });
      const index = this.timed.length;
      this.timed.push(kernel.name);
      this.pass = this.encoder.beginComputePass({
        timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * index, endOfPassWriteIndex: 2 * index + 1 },
      });
    }
    this.pass ??= this.encoder.beginComputePass();
    this.pass.setPipeline(kernel.pipeline);
    this.pass.setBindGroup(0, this.runtime.bindGroup(kernel, this.uniform, tensors), [base]);
    this.pass.dispatchWorkgroups(x, y, z);
    this.runtime.dispatchCount++;
    if (this.profile && this.querySet) this.endPass();
  }

  /** Copy `from` into `to` (same byte count, or `bytes`). */
  copy(from: Tensor, to: Tensor, bytes = Math.min(from.bytes, to.bytes)): void {
    this.endPass();
    this.encoder.copyBufferToBuffer(from.buffer, from.offset, to.buffer, to.offset, bytes);
  }

  /** Zero a tensor. */
  clear(tensor: Tensor): void {
    this.endPass();
    this.encoder.clearBuffer(tensor.buffer, tensor.offset, tensor.bytes);
  }

  /**
   * Copy `tensor` into a staging buffer at this point of the step; the promise resolves after the submit
   * completes (the step does not wait for it).
   */
  readLater(tensor: Tensor): Promise<Float32Array | Int32Array | Uint32Array | Uint16Array> {
    this.endPass();
    const staging = this.runtime.takeStaging(tensor.bytes);
    this.encoder.copyBufferToBuffer(tensor.buffer, tensor.offset, staging, 0, tensor.bytes);
    return new Promise((resolve, reject) => {
      this.afterSubmit.push(() => {
        staging.mapAsync(GPUMapMode.READ, 0, tensor.bytes).then(
          () => {
            const copy = staging.getMappedRange(0, tensor.bytes).slice(0);
            staging.unmap();
            this.runtime.giveStaging(staging);
            const n = tensor.size;
            if (tensor.dtype === 'f32') resolve(new Float32Array(copy, 0, n));
            else if (tensor.dtype === 'i32') resolve(new Int32Array(copy, 0, n));
            else if (tensor.dtype === 'u32') resolve(new Uint32Array(copy, 0, n));
            else resolve(new Uint16Array(copy, 0, n));
          },
          (cause) => {
            staging.destroy();
            reject(
              new GpuError(
                `reading '${tensor.label}' back from the GPU failed: ${cause instanceof Error ? cause.message : String(cause)}`,
                { cause, retryable: true },
              ),
            );
          },
        );
      });
    });
  }

  /** Drop what was recorded without submitting it (its pending read-backs never resolve). */
  abandon(): void {
    this.submitted = true;
    this.endPass();
    this.encoder.finish();
  }

  /** Upload the params and submit the step. */
  submit(): void {
    if (this.submitted) return;
    this.submitted = true;
    this.endPass();
    this.runtime.assertLive();
    const device = this.runtime.device;
    if (this.querySet && this.profile) {
      const count = this.timed.length * 2;
      const resolved = device.createBuffer({ size: count * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      const staging = device.createBuffer({ size: count * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      this.encoder.resolveQuerySet(this.querySet, 0, count, resolved, 0);
      this.encoder.copyBufferToBuffer(resolved, 0, staging, 0, count * 8);
      const names = this.timed;
      const profile = this.profile;
      const querySet = this.querySet;
      this.afterSubmit.push(() => {
        void staging.mapAsync(GPUMapMode.READ).then(() => {
          const stamps = new BigUint64Array(staging.getMappedRange());
          names.forEach((name, k) => {
            const entry = profile.get(name) ?? { calls: 0, ns: 0 };
            entry.calls += 1;
            entry.ns += Number(stamps[2 * k + 1] - stamps[2 * k]);
            profile.set(name, entry);
          });
          staging.destroy();
          resolved.destroy();
          querySet.destroy();
        });
      });
    }
    if (this.slots > 0) device.queue.writeBuffer(this.uniform.buffer, 0, this.params, 0, this.slots * PARAM_SLOT);
    device.queue.submit([this.encoder.finish()]);
    for (const fn of this.afterSubmit) fn();
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = undefined;
    }
  }
}

/** Create a buffer; an out-of-memory or too-large request becomes a GpuError naming it and its size. */
export function createBufferChecked(engine: EngineDevice, descriptor: GPUBufferDescriptor): GPUBuffer {
  if (engine.lost !== undefined) throw new GpuError(`the GPU device was lost (${engine.lost})`, { retryable: true });
  if (descriptor.size > engine.caps.maxBufferSize) {
    throw new GpuError(
      `buffer '${descriptor.label}' of ${formatBytes(descriptor.size)} exceeds this device's largest buffer (${formatBytes(engine.caps.maxBufferSize)})`,
      {
        context: { buffer: descriptor.label, bytes: descriptor.size },
      },
    );
  }
  try {
    return engine.device.createBuffer(descriptor);
  } catch (cause) {
    throw new GpuError(
      `could not allocate '${descriptor.label}' (${formatBytes(descriptor.size)}) on the GPU: ${cause instanceof Error ? cause.message : String(cause)}`,
      {
        cause,
        context: { buffer: descriptor.label, bytes: descriptor.size },
      },
    );
  }
}

/**
 * Create several arenas and check, through an out-of-memory error scope, that the device could back them;
 * a failure destroys what was made and throws GpuError naming `what` and the bytes asked for.
 */
export async function allocateArenas(
  engine: EngineDevice,
  what: string,
  sizes: Readonly<Record<string, number>>,
): Promise<Record<string, Arena>> {
  engine.device.pushErrorScope('out-of-memory');
  const made: Record<string, Arena> = {};
  let failure: unknown;
  try {
    for (const [name, bytes] of Object.entries(sizes)) made[name] = new Arena(engine, `${what}/${name}`, bytes);
  } catch (err) {
    failure = err;
  }
  const oom = await engine.device.popErrorScope();
  if (failure !== undefined || oom) {
    for (const arena of Object.values(made)) arena.destroy();
    if (failure instanceof GpuError) throw failure;
    const total = Object.values(sizes).reduce((a, b) => a + b, 0);
    throw new GpuError(
      `the GPU ran out of memory allocating ${what}: ${formatBytes(total)} asked for (${Object.entries(sizes)
        .map(([k, v]) => `${k} ${formatBytes(v)}`)
        .join(', ')})`,
      {
        cause: failure ?? oom,
        context: { what, bytes: total },
      },
    );
  }
  return made;
}

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** IEEE half-precision bits → numbers. */
export function decodeF16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let k = 0; k < bits.length; k++) {
    const h = bits[k];
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) out[k] = sign * 2 ** -14 * (mantissa / 1024);
    else if (exponent === 31) out[k] = mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else out[k] = sign * 2 ** (exponent - 15) * (1 + mantissa / 1024);
  }
  return out;
}

/** Workgroup counts [x, y] covering `n` workgroups within the per-dimension limit (65535). */
export function spread(n: number): [number, number] {
  if (n <= 65535) return [n, 1];
  const y = Math.ceil(n / 65535);
  return [Math.ceil(n / y), y];
}
