/**
 * Person attributes of the Accurate Retrieval and Conflict Resolution data, each with the sentence that
 * states it, the sentence that reports a change (Conflict Resolution), the question that asks for it, and
 * parsers the scripted writer uses to recognise them. Change sentences share fewer words with the question
 * than the fact does, so a memory that keeps the stale fact next to a raw change sentence answers with the
 * stale value: the writer has to update (or restate) the fact.
 */
import type { Rng } from '../../../core/rng.js';
import { ANIMALS, COLOURS, JOBS, article, pick, type Lexicon } from './lexicon.js';

/** Attribute names. */
export type RelationName = 'home' | 'job' | 'colour' | 'pet' | 'birth';

/** One attribute of a person. */
export interface Relation {
  readonly name: RelationName;
  /** Whether Conflict Resolution data may change it. */
  readonly mutable: boolean;
  /** A value different from `except`. */
  value(rng: Rng, lexicon: Lexicon, except?: string): string;
  /** The sentence stating the attribute. */
  fact(subject: string, value: string): string;
  /** The sentence reporting a change from `old` to `value` (mutable relations). */
  change(subject: string, value: string, old: string): string;
  question(subject: string): string;
  /** Subject and value of a fact sentence of this relation. */
  parseFact(text: string): { subject: string; value: string } | undefined;
  /** Subject and new value of a change sentence of this relation. */
  parseChange(text: string): { subject: string; value: string } | undefined;
}

const NAME = '([A-Z][a-z]+ [A-Z][a-z]+)';

function matcher(pattern: string): (text: string) => { subject: string; value: string } | undefined {
  const re = new RegExp(`^${pattern}$`);
  return (text) => {
    const m = re.exec(text.trim());
    return m === null ? undefined : { subject: m[1], value: m[2] };
  };
}

function otherThan(rng: Rng, items: readonly string[], except?: string): string {
  for (;;) {
    const value = pick(rng, items);
    if (value !== except) return value;
  }
}

/** The five attributes, in a fixed order. */
export const RELATIONS: readonly Relation[] = [
  {
    name: 'home',
    mutable: true,
    value: (_rng, lexicon) => lexicon.place(),
    fact: (s, v) => `${s} lives in ${v}.`,
    change: (s, v) => `${s} moved to ${v}.`,
    question: (s) => `Where does ${s} live?`,
    parseFact: matcher(`${NAME} lives in ([A-Z][a-z]+)\\.`),
    parseChange: matcher(`${NAME} moved to ([A-Z][a-z]+)\\.`),
  },
  {
    name: 'job',
    mutable: true,
    value: (rng, _lexicon, except) => otherThan(rng, JOBS, except),
    fact: (s, v) => `${s} works as ${article(v)} ${v}.`,
    change: (s, v) => `${s} became ${article(v)} ${v}.`,
    question: (s) => `What does ${s} work as?`,
    parseFact: matcher(`${NAME} works as an? ([a-z]+)\\.`),
    parseChange: matcher(`${NAME} became an? ([a-z]+)\\.`),
  },
  {
    name: 'colour',
    mutable: true,
    value: (rng, _lexicon, except) => otherThan(rng, COLOURS, except),
    fact: (s, v) => `${s}'s favourite colour is ${v}.`,
    change: (s, v) => `${s} now prefers ${v}.`,
    question: (s) => `What is ${s}'s favourite colour?`,
    parseFact: matcher(`${NAME}'s favourite colour is ([a-z]+)\\.`),
    parseChange: matcher(`${NAME} now prefers ([a-z]+)\\.`),
  },
  {
    name: 'pet',
    mutable: true,
    value: (rng, _lexicon, except) => otherThan(rng, ANIMALS, except),
    fact: (s, v) => `${s} owns ${article(v)} ${v}.`,
    change: (s, v, old) => `${s} gave the ${old} away and adopted ${article(v)} ${v}.`,
    question: (s) => `Which pet does ${s} own?`,
    parseFact: matcher(`${NAME} owns an? ([a-z]+)\\.`),
    parseChange: matcher(`${NAME} gave the [a-z]+ away and adopted an? ([a-z]+)\\.`),
  },
  {
    name: 'birth',
    mutable: false,
    value: (rng) => String(1900 + rng.int(110)),
    fact: (s, v) => `${s} was born in ${v}.`,
    change: (s, v) => `${s} was born in ${v}.`,
    question: (s) => `In which year was ${s} born?`,
    parseFact: matcher(`${NAME} was born in (\\d{4})\\.`),
    parseChange: () => undefined,
  },
];

/** A time prefix of an event sentence: `Day 3: `. */
export const DAY_PREFIX = /^Day (\d+): /;

/** The fact a sentence states, if it is a fact sentence of some relation. */
export function parseFactSentence(text: string): { relation: Relation; subject: string; value: string } | undefined {
  for (const relation of RELATIONS) {
    const found = relation.parseFact(text);
    if (found) return { relation, ...found };
  }
  return undefined;
}

/** The change a sentence reports (a leading `Day N: ` allowed), if it is a change sentence. */
export function parseChangeSentence(text: string): { relation: Relation; subject: string; value: string } | undefined {
  const body = text.trim().replace(DAY_PREFIX, '');
  for (const relation of RELATIONS) {
    const found = relation.parseChange(body);
    if (found) return { relation, ...found };
  }
  return undefined;
}
