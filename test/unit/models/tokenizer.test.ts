import { describe, expect, it } from 'vitest';
import { BOS_ID, BYTE_TOKENIZER_VOCAB_SIZE, ByteTokenizer, EOT_ID, PAD_ID } from '../../../models/tokenizer.js';

const tokenizer = new ByteTokenizer();

describe('ByteTokenizer', () => {
  it('maps text to its UTF-8 bytes', () => {
    expect(tokenizer.encode('Hi!')).toEqual([72, 105, 33]);
    // é is U+00E9 → C3 A9; the euro sign U+20AC → E2 82 AC.
    expect(tokenizer.encode('é€')).toEqual([0xc3, 0xa9, 0xe2, 0x82, 0xac]);
    expect(tokenizer.encode('')).toEqual([]);
  });

  it('round-trips ASCII, multi-byte and astral-plane text', () => {
    for (const text of ['plain text', 'naïve café', '日本語のテキスト', 'emoji 🧪🚀 mix', 'tab\tnew\nline\u0000nul']) {
      expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
    }
  });

  it('fixes the special ids and vocabulary size', () => {
    expect([BOS_ID, EOT_ID, PAD_ID, BYTE_TOKENIZER_VOCAB_SIZE]).toEqual([256, 257, 258, 260]);
    expect(tokenizer.vocabSize).toBe(260);
    expect(tokenizer.isSpecial(255)).toBe(false);
    expect(tokenizer.isSpecial(256)).toBe(true);
    expect(tokenizer.isSpecial(259)).toBe(true);
  });

  it('skips special ids when decoding', () => {
    expect(tokenizer.decode([BOS_ID, 104, 105, EOT_ID, PAD_ID, 259])).toBe('hi');
    // A special id between the bytes of one character does not break the character.
    expect(tokenizer.decode([0xc3, EOT_ID, 0xa9])).toBe('é');
  });

  it('decodes malformed UTF-8 to replacement characters instead of throwing', () => {
    expect(tokenizer.decode([0xff])).toBe('\ufffd');
    // A truncated 3-byte sequence followed by ASCII: one replacement, then the ASCII survives.
    expect(tokenizer.decode([0xe2, 0x82, 0x41])).toBe('\ufffdA');
    expect(tokenizer.decode([0x80, 0x80])).toBe('\ufffd\ufffd');
  });

  it('rejects ids outside the vocabulary', () => {
    expect(() => tokenizer.decode([65, 260])).toThrow(RangeError);
    expect(() => tokenizer.decode([-1])).toThrow(/outside the byte vocabulary/);
    expect(() => tokenizer.decode([1.5])).toThrow(RangeError);
  });
});
