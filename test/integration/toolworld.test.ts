/**
 * LOOP on toolworld through the real queue: a real redis-server, a `horizon learner` and a `horizon
 * worker` process, a tiny policy, a warm start on the scripted solver's demonstrations and two LOOP
 * iterations on compact notes tasks.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ByteTokenizer } from '../../models/tokenizer.js';
import { JobControl } from '../../rollout/jobs.js';
import { runCli, startCli, tempDir, uniquePrefix, useTestRedis, waitFor } from '../helpers/services.js';

const testRedis = useTestRedis();

const CONFIG = `
name: toolworld-it
algorithm: loop
seed: 4
backend: wasm
env:
  name: toolworld
  options:
    prompt: compact
    docs: "off"
    auth: false
    worldSize: tiny
    reminder: false
    templates: [notes_create, notes_delete]
    challengeTemplates: []
    maxTurns: 2
    maxResultChars: 120
    scenarios: { train: 20, dev: 2, test-normal: 2, test-challenge: 2 }
model:
  dModel: 16
  nLayers: 1
  nHeads: 2
  maxSeqLen: 320
rollout:
  tasksPerIteration: 2
  groupSize: 2
  maxTurns: 2
  maxTokensPerTurn: 40
  maxObservationTokens: 160
loop:
  minibatchSize: 4
optim:
  lr: 0.001
sft:
  steps: 2
  batchSize: 4
train:
  iterations: 2
  checkpointEvery: 1
workers:
  count: 1
`;

describe('LOOP on toolworld through the real queue', () => {
  it('warm-starts on demonstrations and runs two iterations of scored toolworld episodes', async () => {
    const { dir, cleanup } = tempDir('toolworld');
    const prefix = uniquePrefix('toolworld');
    const url = testRedis.url();
    const configFile = path.join(dir, 'toolworld.yaml');
    writeFileSync(configFile, CONFIG);
    const learner = startCli(['learner', '--redis', url, '--prefix', prefix, '--runs-dir', dir]);
    const worker = startCli(['worker', '--redis', url, '--prefix', prefix]);
    const jobs = new JobControl(testRedis.client(), url, { prefix });
    try {
      const submitted = await runCli(['submit', configFile, '--redis', url, '--prefix', prefix]);
      expect(submitted.code, submitted.output).toBe(0);
      const jobId = submitted.output.trim().split('\n')[0];
      const state = await waitFor(
        async () => {
          const s = await jobs.status(jobId);
          return ['completed', 'failed'].includes(s.state) ? s.state : undefined;
        },
        110_000,
        `job ${jobId} to finish`,
        500,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\nlearner:\n${learner.output().slice(-3000)}\nworker:\n${worker.output().slice(-3000)}`);
      });
      expect(state, learner.output().slice(-3000)).toBe('completed');
      expect((await jobs.status(jobId)).iteration).toBe(2);

      const records = readFileSync(path.join(dir, jobId, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, number>);
      expect(records.filter((m) => m.step === -1).map((m) => m['sft/step'])).toEqual([1, 2]);
      const iterations = records.filter((m) => m.step >= 1);
      expect(iterations.map((m) => m.step)).toEqual([1, 2]);
      for (const m of iterations) {
        expect(m['rollout/episodes']).toBeGreaterThan(0);
        expect(m['rollout/episodes']).toBeLessThanOrEqual(4); // T·K = 2·2
        expect(m['rollout/failed_groups']).toBe(0);
        expect(m['losses/logprob_mismatch']).toBeLessThan(1e-3);
        // Every notes_create / notes_delete task has two checks; the reward is the share passed.
        expect(m['rewards/checks_total']).toBe(2);
        expect(m['rewards/passed_all']).toBeGreaterThanOrEqual(0);
        expect(m['rewards/passed_all']).toBeLessThanOrEqual(1);
      }

      const samples = await jobs.samples(jobId);
      const tokens = samples[0].groups[0].rollouts[0].trajectory.segments[0].tokens;
      const text = new ByteTokenizer().decode(tokens.filter((t) => t < 256));
      expect(text).toMatch(/^Today: 2024-\d\d-\d\dT\d\d:00:00\nTask: (Create a note|Delete my note) "/);
    } finally {
      for (const p of [learner, worker]) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await Promise.all([learner.exited, worker.exited]);
      await jobs.close();
      cleanup();
    }
  });
});
