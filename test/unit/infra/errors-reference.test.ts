import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, HorizonError, renderErrorReference } from '../../../core/errors.js';
import { REPO } from '../../helpers/services.js';

describe('error codes', () => {
  it('docs/errors.md is up to date with core/errors.ts (regenerate with `npm run docs:errors`)', () => {
    expect(readFileSync(path.join(REPO, 'docs/errors.md'), 'utf8')).toBe(renderErrorReference());
  });

  it('lists each code once, with what it means and what to do', () => {
    const doc = renderErrorReference();
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      expect(doc.split(`| \`${code}\` |`)).toHaveLength(2);
      expect(entry.meaning.length).toBeGreaterThan(10);
      expect(entry.todo.length).toBeGreaterThan(10);
    }
  });

  it('an error keeps its code, message and retry class', () => {
    const err = new HorizonError('E_JOB_RUNNING', 'job j is running', { retryable: false });
    expect([err.code, err.message, err.retryable]).toEqual(['E_JOB_RUNNING', 'job j is running', false]);
  });
});
