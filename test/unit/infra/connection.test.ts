import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../core/errors.js';
import { redactUrl, redisOptionsFromUrl, resolveRedisUrl } from '../../../rollout/connection.js';

describe('redisOptionsFromUrl', () => {
  it('parses host, port, db and sets maxRetriesPerRequest to null', () => {
    expect(redisOptionsFromUrl('redis://10.0.0.5:7000/3')).toEqual({ host: '10.0.0.5', port: 7000, db: 3, maxRetriesPerRequest: null });
  });

  it('defaults to port 6379 and db 0', () => {
    expect(redisOptionsFromUrl('redis://cache.internal')).toEqual({
      host: 'cache.internal',
      port: 6379,
      db: 0,
      maxRetriesPerRequest: null,
    });
    expect(redisOptionsFromUrl('redis://cache.internal/')).toMatchObject({ db: 0 });
  });

  it('decodes a password-only and a user:password userinfo', () => {
    const passwordOnly = redisOptionsFromUrl('redis://:s3cr%40t%2F@127.0.0.1:6380');
    expect(passwordOnly.password).toBe('s3cr@t/');
    expect(passwordOnly.username).toBeUndefined();
    const both = redisOptionsFromUrl('redis://worker%201:pw@127.0.0.1:6380/1');
    expect(both).toMatchObject({ username: 'worker 1', password: 'pw', port: 6380, db: 1 });
  });

  it('enables TLS for rediss:// with SNI for host names only', () => {
    expect(redisOptionsFromUrl('rediss://redis.example.com:6380').tls).toEqual({ servername: 'redis.example.com' });
    expect(redisOptionsFromUrl('rediss://10.1.2.3').tls).toEqual({ servername: undefined });
    expect(redisOptionsFromUrl('redis://redis.example.com').tls).toBeUndefined();
  });

  it('unbrackets IPv6 hosts', () => {
    expect(redisOptionsFromUrl('redis://[::1]:6390')).toMatchObject({ host: '::1', port: 6390 });
  });

  it('rejects other schemes, non-numeric db paths and garbage with a redacted ConfigError', () => {
    expect(() => redisOptionsFromUrl('http://localhost:6379')).toThrow(ConfigError);
    expect(() => redisOptionsFromUrl('http://localhost:6379')).toThrow(/unsupported Redis URL scheme "http:"/);
    expect(() => redisOptionsFromUrl('redis://localhost/queue')).toThrow(/path "\/queue"; the path must be a database number/);
    expect(() => redisOptionsFromUrl('localhost:6379')).toThrow(ConfigError);
    let message = '';
    try {
      redisOptionsFromUrl('redis://:hunter2@localhost/x');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('redis://:***@localhost/x');
    expect(message).not.toContain('hunter2');
  });
});

describe('redactUrl', () => {
  it('hides passwords and keeps everything else', () => {
    expect(redactUrl('redis://:hunter2@127.0.0.1:6379/2')).toBe('redis://:***@127.0.0.1:6379/2');
    expect(redactUrl('rediss://admin:p%40ss@host:6380')).toBe('rediss://admin:***@host:6380');
  });

  it('returns URLs without a password unchanged', () => {
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(redactUrl('redis://user@host')).toBe('redis://user@host');
  });

  it('redacts strings that do not parse as URLs', () => {
    expect(redactUrl('redis//:x@h')).toBe('redis//:***@h');
    expect(redactUrl('bad url ://u:secret@h')).toBe('bad url ://u:***@h');
  });
});

describe('resolveRedisUrl', () => {
  const saved = process.env.REDIS_URL;
  afterEach(() => {
    if (saved === undefined) delete process.env.REDIS_URL;
    else process.env.REDIS_URL = saved;
  });

  it('prefers the flag, then REDIS_URL, then undefined', () => {
    process.env.REDIS_URL = 'redis://from-env:1';
    expect(resolveRedisUrl('redis://flag:2')).toBe('redis://flag:2');
    expect(resolveRedisUrl()).toBe('redis://from-env:1');
    delete process.env.REDIS_URL;
    expect(resolveRedisUrl()).toBeUndefined();
    process.env.REDIS_URL = '';
    expect(resolveRedisUrl()).toBeUndefined();
  });
});
