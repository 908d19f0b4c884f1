import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../../core/errors.js';
import { Rng } from '../../../core/rng.js';
import { decodeSafetensors, encodeSafetensors } from '../../../models/safetensors.js';
import { connectRedis } from '../../../rollout/connection.js';
import { startRedisServer, type RedisServerHandle } from '../../../rollout/redis-server.js';
import { WeightCache, WeightStore } from '../../../rollout/weight-store.js';

let dir: string;
let server: RedisServerHandle;
let redis: Redis;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'horizon-weights-'));
  server = await startRedisServer({ dir, appendOnly: false });
  redis = await connectRedis(server.url);
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh namespace per test so tests never see each other's keys. */
function uniquePrefix(): string {
  return `test-${randomUUID()}`;
}

function blob(seed: number, length = 1000): Uint8Array {
  const rng = new Rng(seed);
  return Uint8Array.from({ length }, () => rng.int(256));
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CheckpointError);
  return err as Error;
}

describe('WeightStore', () => {
  it('round-trips bytes (all 256 byte values) and records sha256 and size', async () => {
    const store = new WeightStore(redis, { prefix: uniquePrefix() });
    const bytes = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7 + 3) % 256);
    const info = await store.put('job-a', 3, bytes);
    expect(info).toEqual({ sha256: createHash('sha256').update(bytes).digest('hex'), bytes: 4096 });
    const back = await store.get('job-a', 3);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(bytes))).toBe(0);
    expect((await store.info('job-a', 3))?.sha256).toBe(info.sha256);
    expect(await store.info('job-a', 4)).toBeUndefined();
  });

  it('stores a safetensors blob that decodes to the same tensors', async () => {
    const store = new WeightStore(redis, { prefix: uniquePrefix() });
    const weights = { w: { dtype: 'F32' as const, shape: [2, 2], data: new Float32Array([1, -2, 3.5, 0]) } };
    await store.put('job', 0, encodeSafetensors(weights));
    const decoded = decodeSafetensors(await store.get('job', 0)).tensors;
    expect(Array.from(decoded.w.data)).toEqual([1, -2, 3.5, 0]);
  });

  it('uses the documented key layout', async () => {
    const prefix = uniquePrefix();
    const store = new WeightStore(redis, { prefix });
    await store.put('job-k', 12, blob(1, 10));
    expect(await redis.exists(`${prefix}:weights:job-k:12`)).toBe(1);
    expect(await redis.hkeys(`${prefix}:weights:job-k:meta`)).toEqual(['12']);
    expect(await redis.keys(`${prefix}:*`)).toHaveLength(2);
  });

  it('names job, version and the available versions when a version is missing', async () => {
    const store = new WeightStore(redis, { prefix: uniquePrefix() });
    await store.put('job-m', 1, blob(1));
    await store.put('job-m', 2, blob(2));
    const err = await rejection(store.get('job-m', 7));
    expect(err.message).toMatch(/weights for job job-m version 7 is not stored .*Available versions: 1, 2\./);
    const none = await rejection(store.get('other-job', 0));
    expect(none.message).toMatch(/job other-job version 0 is not stored .*Available versions: none\./);
  });

  it('detects a blob corrupted behind its back (raw SET) and a blob deleted without its metadata', async () => {
    const prefix = uniquePrefix();
    const store = new WeightStore(redis, { prefix });
    const good = blob(5);
    await store.put('job-c', 4, good);
    const tampered = Buffer.from(good);
    tampered[500] ^= 0xff;
    await redis.set(`${prefix}:weights:job-c:4`, tampered);
    const err = await rejection(store.get('job-c', 4));
    expect(err.message).toMatch(
      /weights for job job-c version 4 are corrupt: expected 1000 bytes with sha256 [0-9a-f]{64}, got 1000 bytes with sha256 [0-9a-f]{64}/,
    );

    await redis.set(`${prefix}:weights:job-c:4`, Buffer.from(good.subarray(0, 999)));
    expect((await rejection(store.get('job-c', 4))).message).toMatch(/got 999 bytes/);

    await redis.del(`${prefix}:weights:job-c:4`);
    expect((await rejection(store.get('job-c', 4))).message).toMatch(/version 4 has metadata but no blob/);
  });

  it('treats versions as immutable: same bytes is a no-op, different bytes are refused', async () => {
    const store = new WeightStore(redis, { prefix: uniquePrefix() });
    const first = await store.put('job-i', 1, blob(1));
    expect(await store.put('job-i', 1, blob(1))).toEqual(first);
    const err = await rejection(store.put('job-i', 1, blob(2)));
    expect(err.message).toMatch(/job job-i version 1 are already stored with sha256 .*refusing to overwrite/);
    expect(Buffer.from(await store.get('job-i', 1)).equals(Buffer.from(blob(1)))).toBe(true);
  });

  it('tracks the latest version and prunes older ones', async () => {
    const prefix = uniquePrefix();
    const store = new WeightStore(redis, { prefix });
    expect(await store.latestVersion('job-p')).toBeUndefined();
    for (const version of [0, 1, 2, 10, 3]) await store.put('job-p', version, blob(version, 64));
    expect(await store.latestVersion('job-p')).toBe(10);
    expect(await store.listVersions('job-p')).toEqual([0, 1, 2, 3, 10]);

    expect(await store.prune('job-p', 3)).toEqual([0, 1, 2]);
    expect(await store.listVersions('job-p')).toEqual([3, 10]);
    expect(await redis.exists(`${prefix}:weights:job-p:0`, `${prefix}:weights:job-p:1`, `${prefix}:weights:job-p:2`)).toBe(0);
    expect(Buffer.from(await store.get('job-p', 3)).equals(Buffer.from(blob(3, 64)))).toBe(true);
    expect(await store.prune('job-p', 3)).toEqual([]);
    expect(await store.latestVersion('job-p')).toBe(10);
  });

  it('keeps jobs apart', async () => {
    const store = new WeightStore(redis, { prefix: uniquePrefix() });
    await store.put('job-1', 0, blob(1, 16));
    await store.put('job-2', 0, blob(2, 16));
    await store.prune('job-1', 5);
    expect(await store.listVersions('job-1')).toEqual([]);
    expect(await store.listVersions('job-2')).toEqual([0]);
  });

  it('rejects invalid ids before touching Redis', async () => {
    const store = new WeightStore(redis, { prefix: uniquePrefix() });
    expect((await rejection(store.put('', 0, blob(1)))).message).toMatch(/non-empty string/);
    expect((await rejection(store.get('job', -1))).message).toMatch(/non-negative integer, got -1/);
    expect((await rejection(store.get('job', 1.5))).message).toMatch(/got 1.5/);
  });
});

describe('WeightCache over a real store', () => {
  it('shares one fetch between concurrent gets and serves repeats from memory', async () => {
    const store = new WeightStore(redis, { prefix: uniquePrefix() });
    await store.put('job', 1, encodeSafetensors({ x: { dtype: 'I32', shape: [3], data: new Int32Array([4, 5, 6]) } }));
    let fetches = 0;
    const cache = new WeightCache(async (jobId, version) => {
      fetches += 1;
      return decodeSafetensors(await store.get(jobId, version)).tensors;
    });
    const results = await Promise.all([cache.get('job', 1), cache.get('job', 1), cache.get('job', 1)]);
    expect(fetches).toBe(1);
    expect(results[0]).toBe(results[1]);
    expect(results[1]).toBe(results[2]);
    expect(Array.from(results[0].x.data)).toEqual([4, 5, 6]);
    await cache.get('job', 1);
    expect(fetches).toBe(1);
  });

  it('does not cache a failed fetch (missing version), so a later get after publishing succeeds', async () => {
    const store = new WeightStore(redis, { prefix: uniquePrefix() });
    let fetches = 0;
    const cache = new WeightCache((jobId, version) => {
      fetches += 1;
      return store.get(jobId, version);
    });
    const [a, b] = await Promise.allSettled([cache.get('job', 2), cache.get('job', 2)]);
    expect(a.status).toBe('rejected');
    expect(b.status).toBe('rejected');
    expect(fetches).toBe(1);
    expect(cache.has('job', 2)).toBe(false);
    await store.put('job', 2, blob(9, 32));
    expect(Buffer.from(await cache.get('job', 2)).equals(Buffer.from(blob(9, 32)))).toBe(true);
    expect(fetches).toBe(2);
  });
});
