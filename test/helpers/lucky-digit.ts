/**
 * The lucky-digit bandit run shared by the learning tests (tfjs and the GPU engine): a warm-started tiny
 * policy on a one-turn task whose reward is 1 only for the lucky digit, 15 iterations through the queue.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from './services.js';

/** `--set` overrides of test/fixtures/configs/tiny.yaml for the run. */
export function luckyDigitSets(): string[] {
  const plugin = path.join(REPO, 'test/fixtures/plugins/lucky-digit.ts');
  return [
    'env.name=null',
    `env.module=${plugin}`,
    'env.options={}',
    'sft.steps=60',
    'sft.lr=0.01',
    'train.iterations=15',
    'train.checkpointEvery=100',
    'rollout.tasksPerIteration=8',
    'rollout.groupSize=6',
    'rollout.stragglerStop.enabled=false',
    'loop.minibatchSize=16',
    'optim.lr=0.003',
  ];
}

/** The metrics records of the run's iterations (step ≥ 1), in order. */
export function iterationMetrics(runDir: string): Record<string, number>[] {
  return readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, number>)
    .filter((m) => m.step >= 1);
}
