import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../core/errors.js';
import { validateEnvDefinition } from '../../../envs/loader.js';
import { builtinEnvNames, builtinEnvs, getBuiltinEnv, isBuiltinEnvName } from '../../../envs/registry.js';
import { guessEnv } from '../../../envs/toy/guess.js';

describe('built-in env registry', () => {
  it('registers toy/guess under its own name', () => {
    expect(builtinEnvNames).toContain('toy/guess');
    expect(getBuiltinEnv('toy/guess')).toBe(guessEnv);
  });

  it('holds only definitions that satisfy the contract, keyed by their name', () => {
    for (const name of builtinEnvNames) {
      const def = validateEnvDefinition(builtinEnvs[name], `built-in env ${name}`);
      expect(def.name).toBe(name);
    }
  });

  it('answers an unknown name with a ConfigError listing the valid names', () => {
    let caught: unknown;
    try {
      getBuiltinEnv('toy/gues');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const error = caught as ConfigError;
    expect(error.code).toBe('E_CONFIG');
    expect(error.message).toContain("unknown built-in environment 'toy/gues'");
    expect(error.message).toContain(`valid names: ${builtinEnvNames.join(', ')}`);
    expect(error.message).toContain('env.module');
  });

  it('does not mistake object-prototype keys for environments', () => {
    for (const name of ['constructor', '__proto__', 'toString']) {
      expect(isBuiltinEnvName(name)).toBe(false);
      expect(() => getBuiltinEnv(name)).toThrow(ConfigError);
    }
  });
});
