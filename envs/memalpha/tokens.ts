/**
 * Token counting for Mem-α. ONE tokenizer for every count — |M|, Σ|c_t|, the core cap, prompt budgets:
 * the policy's byte tokenizer (models/tokenizer.ts), where one token is one UTF-8 byte. The environment
 * layer may not import `models/`, so the count is computed here directly; it equals
 * `new ByteTokenizer().encode(text).length` for every string, lone surrogates included (they encode as
 * U+FFFD, 3 bytes), which test/unit/memalpha/tokens.test.ts checks property-wise.
 */

/** Tokens of `text` under the byte tokenizer (= UTF-8 bytes). */
export function countTokens(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && isLowSurrogate(text.charCodeAt(i + 1))) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** The longest prefix of `text` with at most `maxTokens` tokens, cut between code points. */
export function truncateToTokens(text: string, maxTokens: number): string {
  if (maxTokens <= 0) return '';
  let bytes = 0;
  let i = 0;
  while (i < text.length) {
    const width = codePointWidth(text, i);
    if (bytes + width.bytes > maxTokens) break;
    bytes += width.bytes;
    i += width.units;
  }
  return text.slice(0, i);
}

/** The longest suffix of `text` with at most `maxTokens` tokens, cut between code points. */
export function lastTokens(text: string, maxTokens: number): string {
  if (maxTokens <= 0) return '';
  let bytes = 0;
  let i = text.length;
  while (i > 0) {
    let units = 1;
    let width = 3;
    const c = text.charCodeAt(i - 1);
    if (isLowSurrogate(c) && i >= 2 && isHighSurrogate(text.charCodeAt(i - 2))) {
      units = 2;
      width = 4;
    } else if (c < 0x80) width = 1;
    else if (c < 0x800) width = 2;
    if (bytes + width > maxTokens) break;
    bytes += width;
    i -= units;
  }
  return text.slice(i);
}

function codePointWidth(text: string, i: number): { bytes: number; units: number } {
  const c = text.charCodeAt(i);
  if (c < 0x80) return { bytes: 1, units: 1 };
  if (c < 0x800) return { bytes: 2, units: 1 };
  if (isHighSurrogate(c) && i + 1 < text.length && isLowSurrogate(text.charCodeAt(i + 1))) return { bytes: 4, units: 2 };
  return { bytes: 3, units: 1 };
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}
