/** The webgpu buffer-pool trim, on a stand-in pool with tfjs-webgpu's fields. */
import { describe, expect, it } from 'vitest';
import { trimBufferPool, trimGpuBufferPool, type WebGpuBufferPool } from '../../../models/backend.js';

function pool(freeSizes: number[], usedBytes: number): { pool: WebGpuBufferPool; destroyed: number[] } {
  const destroyed: number[] = [];
  const buffers = freeSizes.map((size) => ({ size, destroy: () => destroyed.push(size) }));
  const total = freeSizes.reduce((a, b) => a + b, 0);
  return {
    destroyed,
    pool: {
      freeBuffers: new Map([
        ['a', buffers.slice(0, 1)],
        ['b', buffers.slice(1)],
      ]),
      numFreeBuffers: buffers.length,
      numBytesAllocated: total + usedBytes,
      numBytesUsed: usedBytes,
    },
  };
}

describe('trimBufferPool', () => {
  it('destroys every pooled free buffer once they exceed the limit, and keeps the counters right', () => {
    const { pool: p, destroyed } = pool([100, 200, 300], 1000);
    expect(trimBufferPool(p, 599)).toBe(600);
    expect(destroyed.sort((a, b) => a - b)).toEqual([100, 200, 300]);
    expect(p.numBytesAllocated).toBe(1000); // only the buffers in use remain
    expect(p.numFreeBuffers).toBe(0);
    expect([...p.freeBuffers.keys()]).toEqual(['a', 'b']); // entries kept, emptied
    expect([...p.freeBuffers.values()].every((b) => b.length === 0)).toBe(true);
  });

  it('leaves a pool under the limit alone', () => {
    const { pool: p, destroyed } = pool([100, 200], 50);
    expect(trimBufferPool(p, 300)).toBe(0);
    expect(destroyed).toEqual([]);
    expect(p.numFreeBuffers).toBe(2);
  });

  it('is a no-op on a backend other than webgpu', () => {
    expect(trimGpuBufferPool(0)).toBe(0);
  });
});
