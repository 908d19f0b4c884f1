import { describe, expect, it } from 'vitest';
import { WeightCache } from '../../../rollout/weight-store.js';

/** A loader whose calls stay pending until the test resolves them. */
function controlledLoader() {
  const pending = new Map<string, { resolve: (v: string) => void; reject: (e: Error) => void }>();
  const calls: string[] = [];
  const loader = (jobId: string, version: number) =>
    new Promise<string>((resolve, reject) => {
      const key = `${jobId}@${version}`;
      calls.push(key);
      pending.set(key, { resolve, reject });
    });
  const finish = async (key: string) => {
    pending.get(key)!.resolve(`value:${key}`);
    await Promise.resolve();
    await new Promise((r) => setImmediate(r));
  };
  return { loader, calls, pending, finish };
}

describe('WeightCache', () => {
  it('evicts the least recently used loaded entry and hands it to onEvict', async () => {
    const evicted: string[] = [];
    let loads = 0;
    const cache = new WeightCache(
      async (jobId, version) => {
        loads += 1;
        return `${jobId}@${version}`;
      },
      { capacity: 2, onEvict: (value) => evicted.push(value) },
    );
    await cache.get('j', 1);
    await cache.get('j', 2);
    await cache.get('j', 1); // 1 becomes most recent, so 2 is the LRU
    await cache.get('j', 3);
    expect(evicted).toEqual(['j@2']);
    expect(cache.has('j', 1)).toBe(true);
    expect(cache.has('j', 2)).toBe(false);
    expect(cache.has('j', 3)).toBe(true);
    expect(cache.size).toBe(2);
    expect(loads).toBe(3);
    await cache.get('j', 2);
    expect(loads).toBe(4);
    expect(evicted).toEqual(['j@2', 'j@1']);
  });

  it('keys by job as well as version', async () => {
    const cache = new WeightCache(async (jobId, version) => `${jobId}@${version}`);
    expect(await cache.get('a', 1)).toBe('a@1');
    expect(await cache.get('b', 1)).toBe('b@1');
  });

  it('never evicts an entry that is still loading, nor the value it is about to return', async () => {
    const { loader, calls, finish } = controlledLoader();
    const evicted: string[] = [];
    const cache = new WeightCache(loader, { capacity: 1, onEvict: (value) => evicted.push(value) });
    const first = cache.get('j', 1);
    const second = cache.get('j', 2);
    expect(calls).toEqual(['j@1', 'j@2']);
    expect(cache.size).toBe(2); // both in flight: over capacity, but nothing can be evicted yet
    expect(evicted).toEqual([]);
    await finish('j@1');
    expect(await first).toBe('value:j@1');
    // 1 is loaded but the only entry that is; it is the one being returned, so it stays for now.
    expect(evicted).toEqual([]);
    await finish('j@2');
    expect(await second).toBe('value:j@2');
    expect(evicted).toEqual(['value:j@1']);
    expect(cache.size).toBe(1);
  });

  it('shares one load between concurrent callers and forgets failures', async () => {
    const { loader, calls, pending } = controlledLoader();
    const cache = new WeightCache(loader);
    const a = cache.get('j', 5);
    const b = cache.get('j', 5);
    expect(calls).toEqual(['j@5']);
    pending.get('j@5')!.reject(new Error('network down'));
    await expect(a).rejects.toThrow('network down');
    await expect(b).rejects.toThrow('network down');
    expect(cache.has('j', 5)).toBe(false);
    void cache.get('j', 5);
    expect(calls).toEqual(['j@5', 'j@5']);
  });

  it('does not keep an entry when the loader throws synchronously', async () => {
    const cache = new WeightCache<string>(() => {
      throw new Error('bad arguments');
    });
    await expect(cache.get('j', 1)).rejects.toThrow('bad arguments');
    expect(cache.size).toBe(0);
  });

  it('clear() disposes loaded values and lets in-flight loads finish uncached', async () => {
    const { loader, finish } = controlledLoader();
    const evicted: string[] = [];
    const cache = new WeightCache(loader, { onEvict: (value) => evicted.push(value) });
    const loaded = cache.get('j', 1);
    await finish('j@1');
    await loaded;
    const inFlight = cache.get('j', 2);
    cache.clear();
    expect(evicted).toEqual(['value:j@1']);
    expect(cache.size).toBe(0);
    await finish('j@2');
    expect(await inFlight).toBe('value:j@2');
    expect(cache.size).toBe(0);
    expect(evicted).toEqual(['value:j@1']);
  });

  it('rejects a capacity below 1', () => {
    expect(() => new WeightCache(async () => 0, { capacity: 0 })).toThrow(/capacity must be an integer >= 1/);
  });
});
