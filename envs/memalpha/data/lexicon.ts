/**
 * Words of the synthetic Mem-α data: invented names (unique per instance, so answers cannot come from
 * prior knowledge and BM25 finds them), small lists of common words for attribute values, and filler
 * sentences (lowercase common words only: no capitalised word after the first, no digit — the property
 * the scripted writer uses to tell filler from facts).
 */
import type { Rng } from '../../../core/rng.js';

const CONSONANTS = 'bdfgklmnprstvz';
const VOWELS = 'aeiou';

/** Attribute values and story words. */
export const JOBS = ['baker', 'pilot', 'nurse', 'farmer', 'tailor', 'miner', 'sailor', 'painter', 'doctor', 'teacher', 'potter', 'judge', 'clerk', 'singer', 'weaver', 'smith'] as const;
export const COLOURS = ['red', 'blue', 'green', 'amber', 'violet', 'silver', 'orange', 'white', 'black', 'yellow', 'pink', 'brown'] as const;
export const ANIMALS = ['cat', 'dog', 'goat', 'horse', 'parrot', 'rabbit', 'tortoise', 'hamster', 'donkey', 'goose', 'ferret', 'lizard'] as const;
export const OBJECTS = ['lantern', 'key', 'map', 'ring', 'sword', 'letter', 'coin', 'compass', 'mirror', 'book', 'cloak', 'crown', 'drum', 'flute', 'shield', 'anchor'] as const;
export const STORY_VERBS = ['found', 'lost', 'hid', 'sold', 'repaired', 'buried', 'stole', 'returned'] as const;
/** Class labels of the test-time-learning data. */
export const LABELS = ['sport', 'music', 'food', 'travel', 'science', 'health', 'weather', 'finance'] as const;

const FILLER_ADJECTIVES = ['quiet', 'cold', 'warm', 'grey', 'bright', 'dull', 'windy', 'calm', 'damp', 'still'];
const FILLER_NOUNS = ['gate', 'road', 'fence', 'bell', 'cart', 'well', 'bridge', 'tower', 'wall', 'path', 'lamp', 'door'];
const FILLER_TIMES = ['morning', 'evening', 'afternoon', 'night'];

/** Pick one element uniformly. */
export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)];
}

/** A fresh source of invented words; every word it returns is distinct from the others it returned. */
export class Lexicon {
  private readonly used = new Set<string>();

  constructor(private readonly rng: Rng) {}

  /** A person: given name and surname, e.g. "Mira Kolt". */
  person(): string {
    return this.unique(() => `${capitalise(this.syllables(2, 0.5))} ${capitalise(this.syllables(2, 0.7))}`);
  }

  /** A place name, e.g. "Tavon". */
  place(): string {
    return this.unique(() => capitalise(this.syllables(2, 1)));
  }

  /** A lowercase invented word, e.g. "zorp". */
  word(): string {
    return this.unique(() => this.syllables(2, 0.5));
  }

  private unique(make: () => string): string {
    for (;;) {
      const word = make();
      if (!this.used.has(word)) {
        this.used.add(word);
        return word;
      }
    }
  }

  /** `count` consonant-vowel syllables, ending with a consonant with probability `closed`. */
  private syllables(count: number, closed: number): string {
    let word = '';
    for (let i = 0; i < count; i++) word += pick(this.rng, [...CONSONANTS]) + pick(this.rng, [...VOWELS]);
    if (this.rng.next() < closed) word += pick(this.rng, [...CONSONANTS]);
    return word;
  }
}

/** A filler sentence: common lowercase words only, no names, no digits. */
export function fillerSentence(rng: Rng): string {
  const adjective = pick(rng, FILLER_ADJECTIVES);
  const noun = pick(rng, FILLER_NOUNS);
  const other = pick(rng, FILLER_NOUNS);
  const time = pick(rng, FILLER_TIMES);
  switch (rng.int(6)) {
    case 0:
      return `The weather was ${adjective}.`;
    case 1:
      return `A ${noun} stood by the ${other}.`;
    case 2:
      return `Nobody talked about the ${noun} that ${time}.`;
    case 3:
      return `The ${noun} looked ${adjective} in the ${time}.`;
    case 4:
      return `It was a ${adjective} ${time}.`;
    default:
      return `Someone left the ${noun} near the ${other}.`;
  }
}

/** "a" or "an" for a lowercase word. */
export function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

function capitalise(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}
