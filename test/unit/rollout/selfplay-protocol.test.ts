/**
 * The self-play job protocol (rollout/protocol.ts): payloads told apart from group jobs by `kind`,
 * malformed or other-version payloads refused with a ProtocolError (never retried), results validated
 * episode by episode, and program refs that learner and worker turn into the same program.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../core/errors.js';
import { generateProgram } from '../../../envs/malloc/generators.js';
import { compileProgram } from '../../../envs/malloc/program.js';
import {
  PROTOCOL_VERSION,
  SelfPlayResultSchema,
  jobKeys,
  loadProgramRef,
  parsePayload,
  parseRolloutJob,
  selfPlayJobId,
} from '../../../rollout/protocol.js';
import { REPO } from '../../helpers/services.js';

/** A payload as a learner writes it (workload knobs left to their defaults). */
const valid = {
  v: PROTOCOL_VERSION,
  kind: 'selfplay',
  jobId: 'run-1',
  attempt: 2,
  jobIndex: 7,
  policyVersion: 3,
  programs: [
    { id: 'random-s4', workload: { generator: 'random', seed: 4, instructions: 6 } },
    { id: 'sample', file: 'examples/data/malloc-sample.csv', csvCapacityFraction: 0.5 },
  ],
  config: { algorithm: 'muzero' },
  configDir: REPO,
};

function protocolError(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError);
    return err as ProtocolError;
  }
  throw new Error('expected a ProtocolError');
}

describe('self-play job payloads', () => {
  it('parse as self-play jobs (workload defaults filled in); payloads without kind stay group jobs', () => {
    const parsed = parseRolloutJob(valid, '1');
    expect(parsed.kind).toBe('selfplay');
    if (parsed.kind !== 'selfplay') return;
    expect(parsed.payload.jobIndex).toBe(7);
    const ref = parsed.payload.programs[0];
    expect('workload' in ref && ref.workload).toMatchObject({
      generator: 'random',
      seed: 4,
      instructions: 6,
      maxInputs: 3,
      capacityFraction: 0.5,
    });
    const group = protocolError(() => parseRolloutJob({ v: PROTOCOL_VERSION, jobId: 'x' }, '2'));
    expect(group.message).toMatch(/^malformed group job 2:/);
  });

  it('refuse malformed payloads with a ProtocolError naming the field, not retryable', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...valid, jobIndex: 'seven' }, /jobIndex/],
      [{ ...valid, programs: [] }, /programs/],
      [{ ...valid, programs: [{ id: 'p', workload: { generator: 'lstm' } }] }, /programs/],
      [{ ...valid, extra: 1 }, /extra|unrecognized/i],
      [{ ...valid, policyVersion: -1 }, /policyVersion/],
    ];
    for (const [payload, field] of cases) {
      const err = protocolError(() => parseRolloutJob(payload, '9'));
      expect(err.message).toMatch(/^malformed self-play job 9:/);
      expect(err.message).toMatch(field);
      expect(err.retryable).toBe(false);
    }
  });

  it('refuse another protocol version, saying to run the same version everywhere', () => {
    const err = protocolError(() => parseRolloutJob({ ...valid, v: PROTOCOL_VERSION + 1 }, '3'));
    expect(err.message).toContain(`protocol version ${PROTOCOL_VERSION + 1}`);
    expect(err.message).toContain('same horizon version');
  });

  it('have deterministic job ids and per-attempt result keys', () => {
    expect(selfPlayJobId('run-1', 2, 7)).toBe('run-1.a2.s7');
    const keys = jobKeys('horizon', 'run-1');
    expect(keys.selfPlayResults(2)).toBe('horizon:job:run-1:selfplay:results:2');
    expect(keys.selfPlayArrivals(2)).toBe('horizon:job:run-1:selfplay:arrivals:2');
  });
});

describe('self-play results', () => {
  const episode = {
    programId: 'p',
    policyVersion: 3,
    numActions: 2,
    actions: [1, 0],
    rewards: [0, 0.25],
    rootValues: [0.2, 0.25],
    policies: [0.5, 0.5, 1, 0],
    return: 0.25,
    finalTime: 30,
    allSlowTime: 40,
  };

  it('accept well-formed episodes and refuse ones whose arrays disagree in length', () => {
    const result = { v: PROTOCOL_VERSION, jobIndex: 0, episodes: [episode], workerId: 'w', wallMs: 5 };
    expect(parsePayload(SelfPlayResultSchema, result, 'result').episodes[0].actions).toEqual([1, 0]);
    const bad = { ...result, episodes: [{ ...episode, policies: [0.5, 0.5, 1] }] };
    expect(protocolError(() => parsePayload(SelfPlayResultSchema, bad, 'result of self-play job 0')).message).toMatch(
      /policies: L × numActions/,
    );
  });
});

describe('program refs', () => {
  it('a workload ref compiles to the generator’s program under the ref id', () => {
    const ref = {
      id: 'random-s4',
      workload: {
        generator: 'random' as const,
        seed: 4,
        instructions: 6,
        minSize: 4096,
        maxSize: 1 << 20,
        maxInputs: 3,
        recency: 0.8,
        computeIntensity: 1,
        capacityFraction: 0.5,
        alignment: 64,
        fastBandwidth: 8000,
        slowBandwidth: 1000,
      },
    };
    const program = loadProgramRef(ref, REPO);
    const expected = compileProgram(generateProgram(ref.workload, 'random-s4'));
    expect(program.name).toBe('random-s4');
    expect(program.bufferCount).toBe(6);
    expect(program.allSlowTime).toBe(expected.allSlowTime);
    expect(program.capacity).toBe(expected.capacity);
  });

  it('a file ref reads the file relative to configDir, with the CSV capacity share', () => {
    const half = loadProgramRef({ id: 's', file: 'examples/data/malloc-sample.csv', csvCapacityFraction: 0.5 }, REPO);
    const quarter = loadProgramRef({ id: 's', file: 'malloc-sample.csv', csvCapacityFraction: 0.25 }, path.join(REPO, 'examples/data'));
    expect(half.bufferCount).toBe(7);
    expect(quarter.capacity).toBe(Math.floor(half.peakLiveBytes * 0.25));
  });
});
