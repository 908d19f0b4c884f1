import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { countTokens, lastTokens, truncateToTokens } from '../../../envs/memalpha/tokens.js';
import { ByteTokenizer } from '../../../models/tokenizer.js';

const tokenizer = new ByteTokenizer();
/** Strings with ASCII, multi-byte characters, astral characters and lone surrogates. */
const anyText = fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.string());

describe('memalpha token counting', () => {
  it('counts exactly the byte tokenizer’s tokens, lone surrogates included', () => {
    expect(countTokens('Mira')).toBe(4);
    expect(countTokens('é')).toBe(2);
    expect(countTokens('€')).toBe(3);
    expect(countTokens('😀')).toBe(4);
    expect(countTokens('\ud800')).toBe(3);
    fc.assert(fc.property(anyText, (text) => countTokens(text) === tokenizer.encode(text).length));
  });

  it('truncateToTokens keeps the longest prefix within the budget, cut between code points', () => {
    expect(truncateToTokens('a😀b', 4)).toBe('a');
    expect(truncateToTokens('a😀b', 5)).toBe('a😀');
    fc.assert(
      fc.property(anyText, fc.integer({ min: 0, max: 64 }), (text, n) => {
        const prefix = truncateToTokens(text, n);
        expect(text.startsWith(prefix)).toBe(true);
        expect(countTokens(prefix)).toBeLessThanOrEqual(n);
        if (prefix.length < text.length) {
          // Maximal: the next code point would not have fitted.
          const next = text.slice(prefix.length, prefix.length + (text.codePointAt(prefix.length)! > 0xffff ? 2 : 1));
          expect(countTokens(prefix) + countTokens(next)).toBeGreaterThan(n);
        }
      }),
    );
  });

  it('lastTokens keeps the longest suffix within the budget', () => {
    expect(lastTokens('ab😀', 4)).toBe('😀');
    expect(lastTokens('ab😀', 3)).toBe('');
    expect(lastTokens('abcdef', 3)).toBe('def');
    fc.assert(
      fc.property(anyText, fc.integer({ min: 0, max: 64 }), (text, n) => {
        const suffix = lastTokens(text, n);
        expect(text.endsWith(suffix)).toBe(true);
        expect(countTokens(suffix)).toBeLessThanOrEqual(n);
      }),
    );
  });
});
