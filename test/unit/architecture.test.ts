/**
 * Imports flow one way: core → rewards → envs → configs → models → rollout → trainer → cli (and the
 * dashboard / bench / examples on top). A file may import its own layer or any layer below it.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/services.js';

const LAYERS: Record<string, number> = { core: 0, rewards: 1, envs: 2, configs: 3, models: 4, rollout: 5, trainer: 6, cli: 7 };

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

describe('import direction', () => {
  it('no module imports a layer above its own', () => {
    const violations: string[] = [];
    for (const [layer, rank] of Object.entries(LAYERS)) {
      for (const file of sourceFiles(path.join(REPO, layer))) {
        const text = readFileSync(file, 'utf8');
        for (const match of text.matchAll(/from\s+'(\.{1,2}\/[^']+)'/g)) {
          const target = path.relative(REPO, path.resolve(path.dirname(file), match[1])).split(path.sep)[0];
          if (target in LAYERS && LAYERS[target] > rank) violations.push(`${path.relative(REPO, file)} imports ${match[1]}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });
});
