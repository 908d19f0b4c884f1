import { describe, expect, it } from 'vitest';
import { TaskSampler } from '../../../trainer/tasks.js';

describe('TaskSampler (LOOP step 1)', () => {
  it('draws every task exactly once per epoch, then reshuffles', () => {
    const s = new TaskSampler('train', 10, 7);
    const epoch0 = s.next(10).map((t) => t.index);
    const epoch1 = s.next(10).map((t) => t.index);
    expect([...epoch0].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...epoch1].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(epoch1).not.toEqual(epoch0);
  });

  it('crosses epoch boundaries inside one draw', () => {
    const s = new TaskSampler('train', 3, 1);
    expect(s.next(5)).toHaveLength(5);
    expect(s.state()).toEqual({ epoch: 1, offset: 2 });
  });

  it('restores the exact stream from its state (checkpoint/resume)', () => {
    const a = new TaskSampler('train', 50, 3);
    a.next(17);
    const b = new TaskSampler('train', 50, 3, a.state());
    expect(b.next(40)).toEqual(a.next(40));
  });

  it('stamps the split and the seed on every task', () => {
    expect(new TaskSampler('eval', 4, 9).next(1)[0]).toMatchObject({ split: 'eval', seed: 9 });
  });

  it('refuses an empty pool', () => {
    expect(() => new TaskSampler('dev', 0, 1)).toThrow(/no tasks/);
  });
});
