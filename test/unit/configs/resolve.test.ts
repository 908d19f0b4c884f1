import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../core/errors.js';
import { applyOverride, loadConfigFile, resolveConfig } from '../../../configs/resolve.js';
import { renderConfigReference } from '../../../configs/reference.js';

const base = { env: { name: 'toy/guess' } };

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('resolveConfig', () => {
  it('applies defaults and derives the LOOP values (T·K, clip bounds, straggler minimum)', () => {
    const c = resolveConfig(base);
    expect(c.rollout.groupSize).toBe(6);
    expect(c.derived.rolloutsPerIteration).toBe(16 * 6);
    expect(c.derived.clipLow).toBeCloseTo(0.9, 12);
    expect(c.derived.clipHigh).toBeCloseTo(1.1, 12);
    expect(c.derived.stragglerMinPerTask).toBe(5); // ceil(0.75 · 6)
    expect(c.derived.maxContextTokens).toBe(256);
    expect(Object.isFrozen(c.loop)).toBe(true);
  });

  it('uses 1/(1+ε) as the lower bound with clipLow: code', () => {
    expect(resolveConfig({ ...base, loop: { clipLow: 'code' } }).derived.clipLow).toBeCloseTo(1 / 1.1, 12);
  });

  it('fills algorithm presets under what the user wrote', () => {
    const rloo = resolveConfig({ ...base, algorithm: 'rloo' });
    expect(rloo.loop).toMatchObject({ ratio: 'trajectory', epochs: 1, fullBatch: true, normalize: 'none' });
    const grpo = resolveConfig({ ...base, algorithm: 'grpo', loop: { klCoef: 0.1 } });
    expect(grpo.loop).toMatchObject({ advantage: 'group-mean', normalize: 'std', klCoef: 0.1 });
  });

  it('names the field path and the valid choices of a bad enum', () => {
    const err = errorOf(() => resolveConfig({ ...base, loop: { ratio: 'sentence' } }));
    expect(err.message).toContain('loop.ratio');
    expect(err.message).toContain('"token", "turn", "trajectory"');
  });

  it('rejects unknown keys, naming the path and listing the valid keys', () => {
    const err = errorOf(() => resolveConfig({ ...base, rollout: { groupsize: 4 } }));
    expect(err.message).toContain('rollout.groupsize: unknown key');
    expect(err.message).toContain('groupSize');
  });

  it('rejects out-of-range values with the bound', () => {
    const err = errorOf(() => resolveConfig({ ...base, rollout: { groupSize: 1 } }));
    expect(err.message).toMatch(/rollout\.groupSize: .*>=2/);
  });

  it('rejects an unknown built-in environment, listing the valid names', () => {
    const err = errorOf(() => resolveConfig({ env: { name: 'toy/nope' } }));
    expect(err.message).toContain('toy/nope');
    expect(err.message).toContain('toy/guess');
  });

  it('needs exactly one of env.name and env.module', () => {
    expect(errorOf(() => resolveConfig({ env: {} })).message).toContain('exactly one of env.name');
    expect(errorOf(() => resolveConfig({ env: { name: 'toy/guess', module: './x.ts' } })).message).toContain('exactly one of env.name');
  });

  it('checks the attention shape', () => {
    expect(errorOf(() => resolveConfig({ ...base, model: { dModel: 30, nHeads: 4 } })).message).toContain('multiple of model.nHeads');
  });
});

describe('--set overrides', () => {
  it('parse values as YAML and create missing sections', () => {
    const c = resolveConfig(base, {
      overrides: ['rollout.groupSize=4', 'loop.clipLow=code', 'model.qkvBias=true', 'env.options.maxNumber=8'],
    });
    expect(c.rollout.groupSize).toBe(4);
    expect(c.model.qkvBias).toBe(true);
    expect(c.env.options).toEqual({ maxNumber: 8 });
  });

  it('null clears a field (switch from a built-in env to a module)', () => {
    const c = resolveConfig(base, { overrides: ['env.name=null', 'env.module=./my-env.ts'] });
    expect(c.env).toEqual({ name: undefined, module: './my-env.ts', options: {} });
  });

  it('reject a malformed override', () => {
    expect(() => applyOverride({}, 'no-equals-sign')).toThrow(/key\.path=value/);
    expect(() => applyOverride({}, 'a..b=1')).toThrow(/empty key/);
  });
});

describe('config files', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'horizon-cfg-'));

  it('report malformed YAML with file, line and column', () => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'env:\n  name: toy/guess\nrollout: [1, 2\n');
    expect(errorOf(() => loadConfigFile(file)).message).toMatch(/malformed YAML at .*bad\.yaml:\d+:\d+/);
  });

  it('report a missing file', () => {
    expect(errorOf(() => loadConfigFile(path.join(dir, 'missing.yaml'))).message).toContain('ENOENT');
  });

  it('resolve plug-in paths against the config file’s folder', () => {
    const file = path.join(dir, 'ok.yaml');
    writeFileSync(file, 'env:\n  module: ./my-env.ts\n');
    expect(loadConfigFile(file).derived.configDir).toBe(dir);
  });

  it('ship configs that resolve', () => {
    for (const f of ['configs/quickstart.yaml', 'test/fixtures/configs/tiny.yaml']) expect(() => loadConfigFile(f)).not.toThrow();
  });
});

describe('config reference', () => {
  it('lists every field with its default and description', () => {
    const text = renderConfigReference();
    expect(text).toContain('| `rollout.groupSize` | number | `6` | K: rollouts per task');
    expect(text).toContain('| `loop.clipLow` | `paper` \\| `code` | `"paper"` |');
    expect(text).toContain('`rollout.stragglerStop.totalFraction`');
  });
});

describe('docs/config-reference.md', () => {
  it('is up to date with the schema (regenerate with `horizon config-reference --out docs/config-reference.md`)', async () => {
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(path.join(process.cwd(), 'docs/config-reference.md'), 'utf8')).toBe(renderConfigReference());
  });
});

describe('recipe presets and context policies', () => {
  const delethink = {
    ...base,
    algorithm: 'delethink',
    rollout: { context: 'delethink' },
    model: { maxSeqLen: 256 },
    delethink: { chunkTokens: 64, carryoverTokens: 32, headTokens: 8, maxChunks: 4 },
  };

  it('delethink: clip [0.8, 1.26], dual clip 3, trace-length aggregation, TIS on every token; budget C + (I−1)(C−m)', () => {
    const c = resolveConfig(delethink);
    expect(c.derived.clipLow).toBeCloseTo(0.8, 12);
    expect(c.derived.clipHigh).toBeCloseTo(1.26, 12);
    expect(c.loop.dualClip).toBe(3);
    expect(c.loop.aggregation).toBe('trace-length');
    expect(c.loop.importanceSampling).toBe('always');
    expect(c.loop.klCoef).toBe(0);
    expect(c.derived.thinkingBudget).toBe(64 + 3 * 32);
    // The paper's numbers: (8192, 4096, 5) → 24,576.
    expect(resolveConfig({ ...base, model: { maxSeqLen: 16384 } }).derived.thinkingBudget).toBe(24576);
  });

  it('memalpha: per-turn GRPO, token mean, KL 0.001, and it needs the fresh context', () => {
    const c = resolveConfig({ ...base, algorithm: 'memalpha', rollout: { context: 'fresh' } });
    expect([c.loop.advantageUnit, c.loop.aggregation, c.loop.klCoef, c.loop.advantage, c.loop.normalize]).toEqual([
      'turn',
      'token-mean',
      0.001,
      'group-mean',
      'std',
    ]);
    expect(errorOf(() => resolveConfig({ ...base, algorithm: 'memalpha' })).message).toContain('rollout.context: fresh');
  });

  it('a preset whose context differs from the config is an error naming both', () => {
    const err = errorOf(() => resolveConfig({ ...delethink, rollout: { context: 'longcot' } }));
    expect(err.message).toMatch(/algorithm: delethink trains with rollout.context: delethink.*longcot/);
  });

  it('checks that chunks (delethink) or the whole budget (longcot) fit model.maxSeqLen', () => {
    expect(errorOf(() => resolveConfig({ ...delethink, model: { maxSeqLen: 64 } })).message).toContain('model.maxSeqLen (64)');
    const longcot = { ...delethink, algorithm: 'longcot', rollout: { context: 'longcot' }, model: { maxSeqLen: 128 } };
    expect(errorOf(() => resolveConfig(longcot)).message).toContain('LongCoT thinking budget 160');
    expect(resolveConfig({ ...longcot, model: { maxSeqLen: 512 } }).derived.thinkingBudget).toBe(160);
  });

  it('checks m < C and h < m', () => {
    expect(errorOf(() => resolveConfig({ ...delethink, delethink: { chunkTokens: 32, carryoverTokens: 32 } })).message).toContain(
      'carryoverTokens (m) must be smaller',
    );
    expect(errorOf(() => resolveConfig({ ...delethink, delethink: { ...delethink.delethink, headTokens: 40 } })).message).toContain(
      'headTokens (h) must be smaller',
    );
  });
});
