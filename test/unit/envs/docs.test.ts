import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { RunConfigSchema } from '../../../configs/schema.js';
import { loadEnvDefinition, validateEnvOptions } from '../../../envs/loader.js';

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');

describe('docs/environments.md', () => {
  it('shows a plug-in config that parses and whose module loads with the given options', async () => {
    const markdown = readFileSync(resolve(repoRoot, 'docs/environments.md'), 'utf8');
    const block = [...markdown.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]).find((text) => text.includes('name: reverse-word'));
    expect(block).toBeDefined();
    const config = RunConfigSchema.parse(parseYaml(block!));
    // The snippet is meant for a config file at the repository root.
    const def = await loadEnvDefinition(config.env, repoRoot);
    expect(def.name).toBe('example/reverse-word');
    expect(validateEnvOptions(def, config.env.options)).toEqual({ minLength: 3, maxLength: 5, maxTries: 3 });
  });
});
