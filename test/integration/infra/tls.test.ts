/**
 * rediss:// URLs: the CLI and BullMQ talk to a TLS-only redis-server (self-signed CA made here with
 * openssl, trusted through NODE_EXTRA_CA_CERTS, as a user would), and an untrusted certificate is a
 * clear connection error.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findRedisServerBinary, pickFreePort } from '../../../rollout/redis-server.js';
import { REPO, runCli, tempDir, waitFor } from '../../helpers/services.js';

let dir: string;
let cleanup: () => void;
let server: ChildProcess;
let url: string;

beforeAll(async () => {
  ({ dir, cleanup } = tempDir('tls'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=horizon-test-ca');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  ssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
  );
  const port = await pickFreePort();
  server = spawn(
    findRedisServerBinary(),
    [
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--tls-cert-file',
      'server.pem',
      '--tls-key-file',
      'server.key',
      '--tls-ca-cert-file',
      'ca.pem',
      '--tls-auth-clients',
      'no',
      '--save',
      '',
      '--appendonly',
      'no',
    ],
    { cwd: dir, stdio: 'ignore' },
  );
  url = `rediss://localhost:${port}`;
  const env = { NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.pem') };
  await waitFor(
    async () => ((await runCli(['status', '--redis', url], { env })).code === 0 ? true : undefined),
    15_000,
    'the TLS redis-server',
    300,
  );
});

afterAll(() => {
  server?.kill('SIGKILL');
  cleanup?.();
});

describe('rediss:// URLs', () => {
  it('submit and status work over TLS when the CA is trusted', async () => {
    const env = { NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.pem') };
    const submitted = await runCli(['submit', path.join(REPO, 'test/fixtures/configs/tiny.yaml'), '--redis', url, '--prefix', 'tls'], {
      env,
    });
    expect(submitted.code, submitted.output).toBe(0);
    const jobId = submitted.output.trim().split('\n')[0];
    const status = await runCli(['status', jobId, '--redis', url, '--prefix', 'tls', '--json'], { env });
    expect(status.code, status.output).toBe(0);
    expect(JSON.parse(status.output)).toMatchObject({ jobId, state: 'queued', iterations: 3 });
  });

  it('an untrusted certificate is a clear error naming the URL', async () => {
    const r = await runCli(['status', '--redis', url], { env: { NODE_EXTRA_CA_CERTS: '' } });
    expect(r.code).toBe(1);
    expect(r.output).toContain(`cannot connect to Redis at ${url}`);
    expect(r.output).toMatch(/certificate/);
  });
});
