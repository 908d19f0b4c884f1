import { describe, expect, it } from 'vitest';
import { Arena, u, f, type KernelSpec } from '../../../models/engine/runtime.js';
import { requireRuntime } from './helpers.js';

const rt = await requireRuntime();

const AXPY: KernelSpec = {
  name: 'test_axpy',
  bindings: ['read', 'rw'],
  code: /* wgsl */ `
struct Params { n: u32, a: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < P.n) { y[g.x] = P.a * x[g.x] + y[g.x]; }
}`,
};

describe.skipIf(!rt)('engine runtime', () => {
  it('runs many dispatches with different params in one submit, in order', async () => {
    const runtime = rt!;
    const arena = new Arena(runtime.engine, 'test', 1 << 16);
    const x = arena.alloc('x', [100]);
    const y = arena.alloc('y', [100]);
    runtime.write(
      x,
      Float32Array.from({ length: 100 }, (_, k) => k),
    );
    runtime.write(y, new Float32Array(100));
    const kernel = await runtime.kernel(AXPY);
    const rec = runtime.record();
    for (let s = 1; s <= 10; s++) rec.dispatch(kernel, [x, y], [u(100), f(s)], 2);
    const later = rec.readLater(y);
    rec.submit();
    const out = await later;
    // y = Σ_{s=1..10} s·x = 55·x
    expect(Array.from(out.slice(0, 4))).toEqual([0, 55, 110, 165]);
    expect(out[99]).toBe(55 * 99);
    arena.destroy();
  });

  it('names the kernel and the compiler error for bad WGSL', async () => {
    const runtime = rt!;
    await expect(runtime.kernel({ name: 'test_broken', bindings: ['rw'], code: 'fn main() { let x = ; }' })).rejects.toThrow(
      /kernel 'test_broken' failed to compile:\n  1:/,
    );
  });

  it('refuses an allocation beyond the arena with the sizes', () => {
    const arena = new Arena(rt!.engine, 'small', 1024);
    expect(() => arena.alloc('big', [1000])).toThrow(/arena 'small' is full: 'big' \[1000\] needs 4.0 KiB/);
    arena.destroy();
  });
});
