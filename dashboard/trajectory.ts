/**
 * Trajectory display: turns a recorded segment (token ids, policy mask, sampler log-probs, turn ids) into
 * display pieces the viewer shows one per span. A piece is one byte token, a whole multi-byte UTF-8
 * character (its 2–4 byte tokens, so the text reads right), or one special token shown as a marker.
 */
import { BOS_ID, EOT_ID, PAD_ID, ByteTokenizer } from '../models/tokenizer.js';
import type { TrajectorySample } from '../rollout/protocol.js';

/** What produced a piece: the policy (isOutput = 1), the environment / prompt, or a special id. */
export type PieceKind = 'policy' | 'env' | 'special';

/** One span of the viewer. */
export interface TokenPiece {
  /** Decoded text (a marker such as `⏎EOT` for special ids). */
  readonly text: string;
  readonly kind: PieceKind;
  /** The token ids the piece covers (1 for bytes < 0x80 and specials, 2–4 for a UTF-8 character). */
  readonly ids: number[];
  /** Sampler log-probs of those tokens (policy tokens; 0 for environment tokens). */
  readonly logProbs: number[];
  /** Whether the piece came from the policy (for specials: the mask of the special token itself). */
  readonly isOutput: boolean;
  readonly turn: number;
}

type Segment = TrajectorySample['groups'][number]['rollouts'][number]['trajectory']['segments'][number];

/** Markers shown for the special ids (they have no text of their own). */
export const SPECIAL_MARKERS: Readonly<Record<number, string>> = { [BOS_ID]: '⟨BOS⟩', [EOT_ID]: '⏎EOT', [PAD_ID]: '⟨PAD⟩' };

const tokenizer = new ByteTokenizer();

/** Bytes in the UTF-8 sequence a lead byte starts (1 for ASCII and for bytes that cannot lead one). */
function sequenceLength(byte: number): number {
  if (byte >= 0xc2 && byte <= 0xdf) return 2;
  if (byte >= 0xe0 && byte <= 0xef) return 3;
  if (byte >= 0xf0 && byte <= 0xf4) return 4;
  return 1;
}

/** The display pieces of one segment, in order. */
export function segmentPieces(segment: Segment): TokenPiece[] {
  const { tokens, isOutput, logProbs, turn } = segment;
  const pieces: TokenPiece[] = [];
  let i = 0;
  while (i < tokens.length) {
    const id = tokens[i];
    const output = isOutput[i] === 1;
    if (id >= 256 || id < 0) {
      pieces.push({
        text: SPECIAL_MARKERS[id] ?? `⟨${id}⟩`,
        kind: 'special',
        ids: [id],
        logProbs: [logProbs[i]],
        isOutput: output,
        turn: turn[i],
      });
      i++;
      continue;
    }
    // A multi-byte character stays one piece only when all its bytes are there and come from the same side.
    let n = sequenceLength(id);
    for (let j = 1; j < n; j++) {
      const next = tokens[i + j];
      if (next === undefined || next < 0x80 || next > 0xbf || isOutput[i + j] !== isOutput[i]) n = 1;
    }
    const ids = tokens.slice(i, i + n);
    pieces.push({
      text: tokenizer.decode(ids),
      kind: output ? 'policy' : 'env',
      ids,
      logProbs: logProbs.slice(i, i + n),
      isOutput: output,
      turn: turn[i],
    });
    i += n;
  }
  return pieces;
}
