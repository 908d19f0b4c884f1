import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../core/errors.js';
import {
  GroupJobPayloadSchema,
  GroupResultSchema,
  PROTOCOL_VERSION,
  groupJobId,
  parsePayload,
  rolloutId,
} from '../../../rollout/protocol.js';

const valid = {
  v: PROTOCOL_VERSION,
  jobId: 'run-1',
  attempt: 1,
  iteration: 2,
  groupIndex: 3,
  policyVersion: 2,
  task: { split: 'train', index: 5, seed: 1 },
  config: {},
  configDir: '/tmp',
};

describe('queue protocol', () => {
  it('accepts a well-formed group payload', () => {
    expect(parsePayload(GroupJobPayloadSchema, valid, 'group job').groupIndex).toBe(3);
  });

  it('names the bad field of a malformed payload', () => {
    const err = (() => {
      try {
        parsePayload(GroupJobPayloadSchema, { ...valid, iteration: -1, task: { split: 'train' } }, 'group job g1');
      } catch (e) {
        return e as ProtocolError;
      }
    })();
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err!.retryable).toBe(false);
    expect(err!.message).toContain('malformed group job g1');
    expect(err!.message).toContain('iteration');
    expect(err!.message).toContain('task.index');
  });

  it('refuses another protocol version with advice', () => {
    expect(() => parsePayload(GroupJobPayloadSchema, { ...valid, v: 99 }, 'group job')).toThrow(
      /protocol version 99.*same horizon version/,
    );
  });

  it('rejects a trajectory whose per-token arrays disagree in length', () => {
    const result = {
      v: PROTOCOL_VERSION,
      groupId: 'g',
      discarded: false,
      cancelled: [],
      workerId: 'w',
      wallMs: 1,
      generatedTokens: 1,
      trajectories: [
        {
          rolloutId: 'r',
          groupId: 'g',
          policyVersion: 0,
          segments: [{ tokens: [1, 2], isOutput: [0], logProbs: [0, 0], turn: [0, 0] }],
          reward: { total: 1, parts: {} },
          finishReason: 'done',
          turns: 1,
          retries: 0,
          wallMs: 1,
        },
      ],
    };
    expect(() => parsePayload(GroupResultSchema, result, 'result')).toThrow(/same length/);
  });

  it('builds deterministic ids', () => {
    expect(groupJobId('run-1', 2, 3, 4)).toBe('run-1.a2.i3.g4');
    expect(rolloutId('run-1', 2, 3, 4, 5)).toBe('run-1/2/3/4/5');
  });
});
