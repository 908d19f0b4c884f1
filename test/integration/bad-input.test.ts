/**
 * Bad input gets a clear error and loses nothing: config mistakes through the real CLI, a plug-in that
 * breaks the Env contract, a malformed job payload on the queue, a corrupted checkpoint.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../configs/resolve.js';
import { JobControl } from '../../rollout/jobs.js';
import { PROTOCOL_VERSION, QUEUES } from '../../rollout/protocol.js';
import { queueConnection } from '../../rollout/queue-connection.js';
import { RolloutWorker } from '../../rollout/worker.js';
import { selectBackend } from '../../models/backend.js';
import { TransformerPolicy, resolvePolicyConfig } from '../../models/transformer.js';
import { saveCheckpoint } from '../../trainer/checkpoint.js';
import { LearnerService } from '../../trainer/service.js';
import { REPO, runCli, tempDir, uniquePrefix, useTestRedis, waitFor } from '../helpers/services.js';

const TINY = path.join(REPO, 'test/fixtures/configs/tiny.yaml');

const testRedis = useTestRedis();

describe('config mistakes through the CLI', () => {
  it('malformed YAML: file, line and column; exit 1; no run directory created', async () => {
    const { dir, cleanup } = tempDir('badyaml');
    try {
      writeFileSync(path.join(dir, 'bad.yaml'), 'env:\n  name: toy/guess\n  options: {maxNumber: 8\n');
      const r = await runCli(['train', path.join(dir, 'bad.yaml'), '--run-dir', path.join(dir, 'run')]);
      expect(r.code).toBe(1);
      expect(r.output).toMatch(/\[E_CONFIG\] malformed YAML at .*bad\.yaml:\d+:\d+/);
      expect(existsSync(path.join(dir, 'run'))).toBe(false);
    } finally {
      cleanup();
    }
  });

  it('unknown keys, out-of-range values and unknown env names name the field and the valid choices', async () => {
    const unknownKey = await runCli(['validate', TINY, '--set', 'rollout.gruopSize=3']);
    expect(unknownKey.code).toBe(1);
    expect(unknownKey.output).toContain('rollout.gruopSize: unknown key');
    expect(unknownKey.output).toContain('valid keys: tasksPerIteration, groupSize');
    const range = await runCli(['validate', TINY, '--set', 'loop.clipEpsilon=5']);
    expect(range.code).toBe(1);
    expect(range.output).toMatch(/loop\.clipEpsilon: Too big: expected number to be <=1/);
    const env = await runCli(['validate', TINY, '--set', 'env.name=toy/gues']);
    expect(env.code).toBe(1);
    expect(env.output).toContain('unknown environment "toy/gues"; built-in environments: toy/guess');
    const options = await runCli(['validate', TINY, '--set', 'env.options.maxGuess=3']);
    expect(options.code).toBe(1);
    expect(options.output).toMatch(/invalid env\.options for toy\/guess: .*unknown option `maxGuess`/);
  });

  it('a plug-in whose env has no step fails the job before any rollout, saying what is missing', async () => {
    const { dir, cleanup } = tempDir('broken');
    try {
      const broken = path.join(REPO, 'examples/broken-env.ts');
      const r = await runCli([
        'train',
        TINY,
        '--run-dir',
        dir,
        '--workers',
        '0',
        '--no-progress',
        '--set',
        'env.name=null',
        '--set',
        `env.module=${broken}`,
      ]);
      expect(r.code, r.output).toBe(1);
      expect(r.output).toContain('missing `step`');
      expect(r.output).toContain('failed');
    } finally {
      cleanup();
    }
  });
});

describe('a malformed job payload on the rollouts queue', () => {
  it('is failed without retries, with a message naming the problem, and the worker keeps serving', async () => {
    const prefix = uniquePrefix('payload');
    const queue = new Queue(QUEUES.rollouts, { connection: queueConnection(testRedis.url()), prefix });
    const worker = new RolloutWorker({ redisUrl: testRedis.url(), prefix, log: () => undefined });
    await worker.start();
    try {
      const bad = await queue.add('group', { v: PROTOCOL_VERSION, jobId: 'x', iteration: 'three' }, { attempts: 3 });
      const future = await queue.add('group', { v: PROTOCOL_VERSION + 1 }, { attempts: 3 });
      const failedReason = await waitFor(
        async () => {
          const job = await queue.getJob(bad.id!);
          return (await job?.isFailed()) ? job!.failedReason : undefined;
        },
        20_000,
        'the malformed job to fail',
      );
      expect(failedReason).toContain('malformed group job');
      expect(failedReason).toContain('iteration');
      expect((await queue.getJob(bad.id!))!.attemptsMade).toBe(1); // unrecoverable: not retried
      const versionReason = await waitFor(
        async () => {
          const job = await queue.getJob(future.id!);
          return (await job?.isFailed()) ? job!.failedReason : undefined;
        },
        20_000,
        'the future-version job to fail',
      );
      expect(versionReason).toContain(`this build speaks ${PROTOCOL_VERSION}`);
      // The payloads are still there to inspect (nothing lost).
      expect((await queue.getJob(bad.id!))!.data).toMatchObject({ jobId: 'x', iteration: 'three' });
    } finally {
      await worker.close();
      await queue.close();
    }
  });
});

describe('a corrupted checkpoint', () => {
  it('fails the resume with the file named, lists the other checkpoints, and deletes nothing', async () => {
    const { dir, cleanup } = tempDir('corrupt');
    const prefix = uniquePrefix('corrupt');
    const jobs = new JobControl(testRedis.client(), testRedis.url(), { prefix });
    try {
      await selectBackend('wasm');
      const config = loadConfigFile(TINY);
      const jobId = await jobs.submit(config, { enqueue: false });
      const policy = new TransformerPolicy(resolvePolicyConfig({ ...config.model, vocabSize: 260 }), 1);
      const ckpts = path.join(dir, 'checkpoints');
      const state = { iteration: 1, tasks: { epoch: 0, offset: 4 }, rng: [1, 2, 3, 4], elapsedSec: 1, jobId };
      await saveCheckpoint(ckpts, 1, { model: policy.getWeights(), optimizer: { step: 0, tensors: {} }, state });
      const latest = await saveCheckpoint(ckpts, 2, {
        model: policy.getWeights(),
        optimizer: { step: 0, tensors: {} },
        state: { ...state, iteration: 2 },
      });
      policy.dispose();
      const modelFile = path.join(latest, 'model.safetensors');
      const bytes = readFileSync(modelFile);
      bytes[bytes.length - 5] ^= 0xff;
      writeFileSync(modelFile, bytes);
      const service = new LearnerService({
        redis: testRedis.client(),
        redisUrl: testRedis.url(),
        prefix,
        runsDir: dir,
        runDirFor: () => dir,
        log: () => undefined,
      });
      expect(await service.runJob(jobId)).toBe('failed');
      await service.close();
      const status = await jobs.status(jobId);
      expect(status.state).toBe('failed');
      expect(status.error).toContain('model.safetensors');
      expect(status.error).toContain('iter-000001');
      expect(
        readdirSync(ckpts)
          .filter((n) => n.startsWith('iter-'))
          .sort(),
      ).toEqual(['iter-000001', 'iter-000002']);
    } finally {
      await jobs.close();
      cleanup();
    }
  });
});
