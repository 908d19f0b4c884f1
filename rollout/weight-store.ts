/**
 * Policy weights shared through Redis: the learner publishes each version once (immutable, sha256-checked),
 * rollout workers fetch the version a job names and keep a few decoded versions in a small LRU.
 *
 * Layout (one Redis instance; not split across cluster slots):
 *   `${prefix}:weights:${jobId}:${version}` — the blob (binary string)
 *   `${prefix}:weights:${jobId}:meta`       — hash: field `${version}` → JSON {sha256, bytes, storedAt}
 * The blob and its hash field are written by one Lua script, so a reader never sees one without the other.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { CheckpointError } from '../core/errors.js';

/** What `put` records for a version. */
export interface StoredWeightInfo {
  /** Hex sha256 of the blob, checked on every get. */
  sha256: string;
  /** Blob size in bytes. */
  bytes: number;
  /** Milliseconds since the epoch when the version was first stored. */
  storedAt: number;
}

/**
 * Store the blob and its metadata only if the version is new; otherwise return the existing metadata.
 * KEYS[1] blob key, KEYS[2] meta hash; ARGV[1] version field, ARGV[2] metadata JSON, ARGV[3] blob.
 */
const PUT_IF_ABSENT_LUA = `
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then return existing end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return false
`;

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function checkIds(jobId: string, version: number): void {
  if (typeof jobId !== 'string' || jobId === '') throw new CheckpointError('weight store: training job id must be a non-empty string');
  if (!Number.isSafeInteger(version) || version < 0) {
    throw new CheckpointError(`weight store: version must be a non-negative integer, got ${version} (job ${jobId})`);
  }
}

/** Versioned, hash-checked weight blobs in Redis, one namespace per training job. */
export class WeightStore {
  private readonly prefix: string;

  constructor(
    private readonly redis: Redis,
    options: { prefix?: string } = {},
  ) {
    this.prefix = options.prefix ?? 'horizon';
  }

  /** Redis key of one version's blob. */
  blobKey(trainingJobId: string, version: number): string {
    return `${this.prefix}:weights:${trainingJobId}:${version}`;
  }

  /** Redis key of the job's metadata hash (field per version). */
  metaKey(trainingJobId: string): string {
    return `${this.prefix}:weights:${trainingJobId}:meta`;
  }

  /**
   * Publish `bytes` as `version`. Versions are immutable: storing identical bytes again is a no-op,
   * different bytes under an existing version throw CheckpointError.
   */
  async put(trainingJobId: string, version: number, bytes: Uint8Array): Promise<{ sha256: string; bytes: number }> {
    checkIds(trainingJobId, version);
    const sha256 = sha256Hex(bytes);
    const info: StoredWeightInfo = { sha256, bytes: bytes.byteLength, storedAt: Date.now() };
    const blob = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const existing = (await this.redis.eval(
      PUT_IF_ABSENT_LUA,
      2,
      this.blobKey(trainingJobId, version),
      this.metaKey(trainingJobId),
      String(version),
      JSON.stringify(info),
      blob,
    )) as string | null;
    if (existing !== null) {
      const previous = parseInfo(existing, trainingJobId, version);
      if (previous.sha256 !== sha256) {
        throw new CheckpointError(
          `weights for job ${trainingJobId} version ${version} are already stored with sha256 ${previous.sha256}; ` +
            `refusing to overwrite with different bytes (sha256 ${sha256}). Publish a new version number instead.`,
        );
      }
    }
    return { sha256, bytes: bytes.byteLength };
  }

  /** Fetch a version and verify its sha256. Missing or corrupt → CheckpointError naming job and version. */
  async get(trainingJobId: string, version: number): Promise<Uint8Array> {
    checkIds(trainingJobId, version);
    // One MULTI so a concurrent prune cannot remove the metadata between the two reads.
    const results = await this.redis
      .multi()
      .getBuffer(this.blobKey(trainingJobId, version))
      .hget(this.metaKey(trainingJobId), String(version))
      .exec();
    if (results === null)
      throw new CheckpointError(`weight store: transaction reading job ${trainingJobId} version ${version} was aborted`);
    const [[blobError, blob], [metaError, meta]] = results as [[Error | null, Buffer | null], [Error | null, string | null]];
    if (blobError !== null || metaError !== null) {
      throw new CheckpointError(
        `weight store: reading job ${trainingJobId} version ${version} failed: ${(blobError ?? metaError)?.message}`,
        {
          cause: blobError ?? metaError,
        },
      );
    }
    if (blob === null || meta === null) {
      const available = await this.listVersions(trainingJobId);
      const what =
        blob === null && meta === null ? 'is not stored' : blob === null ? 'has metadata but no blob' : 'has a blob but no metadata';
      throw new CheckpointError(
        `weights for job ${trainingJobId} version ${version} ${what} (prefix "${this.prefix}"). ` +
          `Available versions: ${available.length ? available.join(', ') : 'none'}.`,
        { context: { trainingJobId, version, available } },
      );
    }
    const info = parseInfo(meta, trainingJobId, version);
    const actual = sha256Hex(blob);
    if (blob.byteLength !== info.bytes || actual !== info.sha256) {
      throw new CheckpointError(
        `weights for job ${trainingJobId} version ${version} are corrupt: expected ${info.bytes} bytes with sha256 ${info.sha256}, ` +
          `got ${blob.byteLength} bytes with sha256 ${actual}. Republish the version from the learner's checkpoint.`,
        { context: { trainingJobId, version } },
      );
    }
    return blob;
  }

  /** Metadata of one version, or undefined when it is not stored. */
  async info(trainingJobId: string, version: number): Promise<StoredWeightInfo | undefined> {
    checkIds(trainingJobId, version);
    const meta = await this.redis.hget(this.metaKey(trainingJobId), String(version));
    return meta === null ? undefined : parseInfo(meta, trainingJobId, version);
  }

  /** Stored versions of a job, ascending. */
  async listVersions(trainingJobId: string): Promise<number[]> {
    const fields = await this.redis.hkeys(this.metaKey(trainingJobId));
    return fields
      .filter((f) => /^\d+$/.test(f))
      .map(Number)
      .sort((a, b) => a - b);
  }

  /** Highest stored version, or undefined when the job has none. */
  async latestVersion(trainingJobId: string): Promise<number | undefined> {
    const versions = await this.listVersions(trainingJobId);
    return versions.length ? versions[versions.length - 1] : undefined;
  }

  /** Delete every version below `keepFrom`; returns the versions deleted. */
  async prune(trainingJobId: string, keepFrom: number): Promise<number[]> {
    const doomed = (await this.listVersions(trainingJobId)).filter((v) => v < keepFrom);
    if (doomed.length === 0) return [];
    const transaction = this.redis.multi();
    for (const version of doomed) transaction.del(this.blobKey(trainingJobId, version));
    transaction.hdel(this.metaKey(trainingJobId), ...doomed.map(String));
    await transaction.exec();
    return doomed;
  }
}

function parseInfo(raw: string, trainingJobId: string, version: number): StoredWeightInfo {
  try {
    const info = JSON.parse(raw) as StoredWeightInfo;
    if (typeof info.sha256 === 'string' && Number.isSafeInteger(info.bytes)) return info;
  } catch {
    // Fall through to the error below.
  }
  throw new CheckpointError(
    `weight metadata for job ${trainingJobId} version ${version} is unreadable: ${JSON.stringify(raw.slice(0, 200))}`,
  );
}

/** Options for {@link WeightCache}. */
export interface WeightCacheOptions<T> {
  /** Decoded versions kept (default 3). Keep it above the number of versions in use at once. */
  capacity?: number;
  /** Called with each value dropped from the cache (dispose tensors here). */
  onEvict?: (value: T, trainingJobId: string, version: number) => void;
}

interface CacheEntry<T> {
  trainingJobId: string;
  version: number;
  promise: Promise<T>;
  value?: T;
  settled: boolean;
}

/**
 * Worker-side LRU of decoded weight versions keyed by (job, version). Concurrent `get`s of a key share one
 * loader call; a failed load is not cached, so the next `get` retries. Entries still loading are never evicted.
 */
export class WeightCache<T> {
  private readonly entries = new Map<string, CacheEntry<T>>();
  private readonly capacity: number;

  constructor(
    private readonly loader: (trainingJobId: string, version: number) => Promise<T>,
    private readonly options: WeightCacheOptions<T> = {},
  ) {
    this.capacity = options.capacity ?? 3;
    if (!Number.isSafeInteger(this.capacity) || this.capacity < 1)
      throw new RangeError(`WeightCache capacity must be an integer >= 1, got ${this.capacity}`);
  }

  /** The decoded value for (job, version), loading it once if needed; marks it most recently used. */
  get(trainingJobId: string, version: number): Promise<T> {
    const key = cacheKey(trainingJobId, version);
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      // Map iteration order is insertion order: re-inserting moves the key to the most-recent end.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.promise;
    }
    const entry = { trainingJobId, version, settled: false } as CacheEntry<T>;
    // Registered before the loader runs, so a loader that fails synchronously cannot leave a stale entry.
    this.entries.set(key, entry);
    entry.promise = this.load(key, entry);
    this.evictOverflow();
    return entry.promise;
  }

  private async load(key: string, entry: CacheEntry<T>): Promise<T> {
    try {
      const value = await this.loader(entry.trainingJobId, entry.version);
      entry.value = value;
      entry.settled = true;
      // After a clear() during the load the value goes to its callers uncached (and undisposed).
      // Never evict the value being handed to its callers right now.
      if (this.entries.get(key) === entry) this.evictOverflow(key);
      return value;
    } catch (err) {
      if (this.entries.get(key) === entry) this.entries.delete(key);
      throw err;
    }
  }

  /** Whether (job, version) is cached or loading. */
  has(trainingJobId: string, version: number): boolean {
    return this.entries.has(cacheKey(trainingJobId, version));
  }

  /** Number of cached or loading entries. */
  get size(): number {
    return this.entries.size;
  }

  /** Drop everything: loaded values go to onEvict; loads in flight still resolve for their callers but are not cached. */
  clear(): void {
    const entries = [...this.entries.values()];
    this.entries.clear();
    for (const entry of entries) if (entry.settled) this.options.onEvict?.(entry.value as T, entry.trainingJobId, entry.version);
  }

  private evictOverflow(protectedKey?: string): void {
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= this.capacity) return;
      if (!entry.settled || key === protectedKey) continue;
      this.entries.delete(key);
      this.options.onEvict?.(entry.value as T, entry.trainingJobId, entry.version);
    }
  }
}

function cacheKey(trainingJobId: string, version: number): string {
  return `${trainingJobId}\u0000${version}`;
}
