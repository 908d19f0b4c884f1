/**
 * Byte-level tokenizer for policies trained from scratch. Ids 0..255 are the UTF-8 bytes of the text,
 * followed by a few special ids; the vocabulary is padded to an even size.
 *
 *   0..255  UTF-8 bytes
 *   256     BOS — start of an episode's context
 *   257     EOT — end of an agent turn (the policy samples it to hand control back to the environment)
 *   258     PAD — right padding in training batches; never part of a real sequence
 *   259     unused (keeps vocabSize even)
 */

/** First special id; every id below it is a raw byte. */
const BYTE_IDS = 256;
/** Beginning of sequence. */
export const BOS_ID = 256;
/** End of an agent turn: the policy's stop token. */
export const EOT_ID = 257;
/** Padding id used to fill rows of a batch to a common length. */
export const PAD_ID = 258;
/** Rows of the embedding matrix: the 256 bytes, BOS, EOT, PAD and one spare id. */
export const BYTE_TOKENIZER_VOCAB_SIZE = 260;

const utf8Encoder = new TextEncoder();
// `fatal: false` turns malformed byte sequences (e.g. a multi-byte character cut by a turn boundary)
// into U+FFFD instead of throwing.
const utf8Decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** Text ⇄ token ids, one token per UTF-8 byte. Stateless; safe to share. */
export class ByteTokenizer {
  /** Number of ids the policy's embedding and output layer must cover. */
  readonly vocabSize = BYTE_TOKENIZER_VOCAB_SIZE;
  /** See {@link BOS_ID}. */
  readonly bosId = BOS_ID;
  /** See {@link EOT_ID}. */
  readonly eotId = EOT_ID;
  /** See {@link PAD_ID}. */
  readonly padId = PAD_ID;

  /** The UTF-8 bytes of `text` as ids (no BOS / EOT added). */
  encode(text: string): number[] {
    return Array.from(utf8Encoder.encode(text));
  }

  /**
   * Text of the byte ids in `ids`; special ids are skipped and malformed UTF-8 becomes U+FFFD.
   * Throws RangeError for an id outside the vocabulary, which means the ids did not come from this
   * tokenizer or its policy.
   */
  decode(ids: ArrayLike<number>): string {
    const bytes = new Uint8Array(ids.length);
    let byteCount = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= BYTE_TOKENIZER_VOCAB_SIZE) {
        throw new RangeError(`token id ${id} at index ${i} is outside the byte vocabulary [0, ${BYTE_TOKENIZER_VOCAB_SIZE})`);
      }
      if (id < BYTE_IDS) bytes[byteCount++] = id;
    }
    return utf8Decoder.decode(bytes.subarray(0, byteCount));
  }

  /** True for BOS, EOT, PAD and the spare id. */
  isSpecial(id: number): boolean {
    return id >= BYTE_IDS && id < BYTE_TOKENIZER_VOCAB_SIZE;
  }
}
