/** The `muzero:` option schemas: documented defaults, and what they refuse. */
import { describe, expect, it } from 'vitest';
import { MuZeroOptionsSchema } from '../../../configs/muzero.js';

describe('MuZeroOptionsSchema', () => {
  it('fills in the documented defaults (docs/mallocmuzero.md, "Defaults")', () => {
    const o = MuZeroOptionsSchema.parse({});
    expect(o.game).toEqual({
      actionSpace: 'canonical',
      candidates: 32,
      order: 'start',
      occupancyOffsetBins: 16,
      occupancyTimeBins: 16,
      lookahead: 4,
    });
    expect(o.network).toEqual({
      stateSize: 64,
      hiddenSize: 128,
      representationLayers: 2,
      dynamicsLayers: 2,
      predictionLayers: 1,
      supportSize: 20,
      valueScale: 100,
    });
    expect(o.search).toMatchObject({
      algorithm: 'gumbel',
      simulations: 16,
      dynamics: 'learned',
      discount: 1,
      pbCInit: 1.25,
      pbCBase: 19652,
      dirichletConcentration: 10,
      rootExplorationFraction: 0.25,
      maxConsideredActions: 16,
      cVisit: 50,
      cScale: 0.1,
    });
    expect(o.replay).toEqual({
      capacity: 100_000,
      priorityExponent: 1,
      importanceExponent: 1,
      priorityEpsilon: 1e-6,
      unrollSteps: 5,
      tdSteps: 10,
      discount: 1,
    });
    expect(o.train).toMatchObject({ learningRate: 3e-4, batchSize: 256, valueLossWeight: 0.25, l2: 1e-4, dynamicsGradientScale: 0.5 });
    expect(o.train.gradClip).toBeUndefined();
  });

  it('keeps inner defaults when a section is partly given', () => {
    expect(MuZeroOptionsSchema.parse({ search: { simulations: 32 } }).search.algorithm).toBe('gumbel');
  });

  it('refuses a search γ that differs from the targets’ γ, and unknown fields', () => {
    const mismatch = MuZeroOptionsSchema.safeParse({ search: { discount: 0.99 } });
    expect(mismatch.success).toBe(false);
    expect(mismatch.error?.issues[0].message).toMatch(/discount must be equal/);
    expect(MuZeroOptionsSchema.safeParse({ network: { layers: 3 } }).success).toBe(false);
  });
});
