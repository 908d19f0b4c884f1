/**
 * Seeded generators of the four Mem-α categories (spec §Data), small enough for a byte-level writer:
 *
 * - **Accurate Retrieval** (`synthetic/ar`, substring match): person facts ("Mira Kolt lives in Tavon.")
 *   mixed with filler sentences; questions ask for single facts ("Where does Mira Kolt live?").
 * - **Test-Time Learning** (`synthetic/ttl`, exact label): labelled examples ("zorp dalik fenu => label:
 *   music"); each class has its own invented keywords plus shared noise words; questions are new examples
 *   to classify ("Classify: fenu zorp miku").
 * - **Long-Range Understanding** (`synthetic/lru`, keyword hit): a story told over the chunks ("This is the
 *   story of …", then "Day 3: Mira Kolt found the lantern in Brel."); one question asks for a summary and
 *   is scored by the share of the story's keywords (hero, job, home, objects, places, companions) it names.
 * - **Conflict Resolution** (`synthetic/cr`, substring match): facts, some of which change a few chunks
 *   later ("Day 4: Mira Kolt moved to Brel."); questions ask for the latest value.
 *
 * Everything is a function of (category, chunk count, seed, options). Chunks hold whole sentences only and
 * at most `maxChunkTokens` tokens: statements (facts, changes, events, examples) always fit — a setting
 * where they cannot is a ConfigError — and filler sentences are added while they fit.
 */
import { ConfigError } from '../../../core/errors.js';
import { Rng } from '../../../core/rng.js';
import { countTokens } from '../tokens.js';
import type { Category, MemalphaInstance, QaItem } from '../types.js';
import { JOBS, LABELS, Lexicon, OBJECTS, STORY_VERBS, article, fillerSentence, pick } from './lexicon.js';
import { RELATIONS, type Relation } from './relations.js';

/** Difficulty knobs of the generators (defaults live in the env's options schema). */
export interface GeneratorOptions {
  /** Upper bound on a chunk's tokens. */
  readonly maxChunkTokens: number;
  /** AR / CR: statements (facts or changes) per chunk. */
  readonly factsPerChunk: number;
  /** AR / CR / LRU: filler sentences added per chunk while they fit. */
  readonly fillerPerChunk: number;
  /** Questions per instance (LRU always has one summary question). */
  readonly questionsPerInstance: number;
  /** TTL: number of classes. */
  readonly classes: number;
  /** TTL: labelled examples per chunk. */
  readonly examplesPerChunk: number;
  /** TTL: words per example. */
  readonly exampleWords: number;
  /** TTL: probability that an example word (after the first) is a shared noise word instead of a class keyword. */
  readonly labelNoise: number;
  /** LRU: story events per chunk. */
  readonly eventsPerChunk: number;
  /** CR: probability that a fact changes later. */
  readonly changeFraction: number;
  /** CR: a change comes 1..changeDelay chunks after its fact. */
  readonly changeDelay: number;
}

/** What identifies one generated instance. */
export interface InstanceSpec {
  readonly category: Category;
  /** Chunks of the instance (≥ 1). */
  readonly chunks: number;
  readonly seed: number;
  /** Becomes the instance id (`<category>/<label>`). */
  readonly label: string;
}

/** The data source name of a generated category. */
export function generatedSource(category: Category): string {
  return `synthetic/${category}`;
}

/** Generate one instance. Deterministic in (spec, options). */
export function generateInstance(spec: InstanceSpec, options: GeneratorOptions): MemalphaInstance {
  if (!Number.isInteger(spec.chunks) || spec.chunks < 1) throw new ConfigError(`memalpha: an instance needs at least one chunk, got ${spec.chunks}`);
  const rng = new Rng(spec.seed);
  const body = GENERATORS[spec.category](rng, spec.chunks, options);
  return { id: `${spec.category}/${spec.label}`, source: generatedSource(spec.category), category: spec.category, ...body };
}

type Body = Pick<MemalphaInstance, 'chunks' | 'questions'>;

const GENERATORS: Record<Category, (rng: Rng, chunks: number, options: GeneratorOptions) => Body> = {
  ar: accurateRetrieval,
  ttl: testTimeLearning,
  lru: longRangeUnderstanding,
  cr: conflictResolution,
};

// ─── Accurate Retrieval ───────────────────────────────────────────────────────────────────────────────

interface Fact {
  readonly subject: string;
  readonly relation: Relation;
  value: string;
  changed: boolean;
}

/** Distinct (person, relation) facts; about two attributes per person. */
function drawFacts(rng: Rng, lexicon: Lexicon, count: number, relations: readonly Relation[]): Fact[] {
  const people: string[] = [];
  const facts: Fact[] = [];
  const taken = new Set<string>();
  while (facts.length < count) {
    if (people.length < Math.ceil((facts.length + 1) / 2)) people.push(lexicon.person());
    const subject = pick(rng, people);
    const relation = pick(rng, relations);
    const key = `${subject}/${relation.name}`;
    if (taken.has(key)) {
      // Every relation of every person is taken: bring in a new person.
      if (taken.size >= people.length * relations.length) people.push(lexicon.person());
      continue;
    }
    taken.add(key);
    facts.push({ subject, relation, value: relation.value(rng, lexicon), changed: false });
  }
  return facts;
}

function accurateRetrieval(rng: Rng, chunkCount: number, options: GeneratorOptions): Body {
  const lexicon = new Lexicon(rng);
  const facts = drawFacts(rng, lexicon, chunkCount * options.factsPerChunk, RELATIONS);
  const chunks: string[] = [];
  for (let t = 0; t < chunkCount; t++) {
    const statements = facts.slice(t * options.factsPerChunk, (t + 1) * options.factsPerChunk).map((f) => f.relation.fact(f.subject, f.value));
    chunks.push(packChunk(rng, statements, options, 'ar'));
  }
  const asked = rng.shuffle([...facts]).slice(0, options.questionsPerInstance);
  return { chunks, questions: asked.map((f) => ({ question: f.relation.question(f.subject), answers: [f.value] })) };
}

// ─── Conflict Resolution ──────────────────────────────────────────────────────────────────────────────

function conflictResolution(rng: Rng, chunkCount: number, options: GeneratorOptions): Body {
  const lexicon = new Lexicon(rng);
  const mutable = RELATIONS.filter((r) => r.mutable);
  const perChunk = options.factsPerChunk;
  /** Change sentences scheduled per chunk. */
  const scheduled: string[][] = Array.from({ length: chunkCount }, () => []);
  const facts: Fact[] = [];
  const chunkStatements: string[][] = [];
  for (let t = 0; t < chunkCount; t++) {
    const statements = scheduled[t].map((s) => s);
    const fresh = drawFactsAvoiding(rng, lexicon, Math.max(0, perChunk - statements.length), mutable, facts);
    for (const fact of fresh) {
      facts.push(fact);
      statements.push(fact.relation.fact(fact.subject, fact.value));
      if (t < chunkCount - 1 && rng.next() < options.changeFraction) {
        // The first chunk within the delay that still has room for a statement.
        const last = Math.min(chunkCount - 1, t + options.changeDelay);
        const offset = 1 + rng.int(last - t);
        for (let k = 0; k < last - t; k++) {
          const target = t + 1 + ((offset - 1 + k) % (last - t));
          if (scheduled[target].length < perChunk) {
            const old = fact.value;
            fact.value = fact.relation.value(rng, lexicon, old);
            fact.changed = true;
            scheduled[target].push(`Day ${target + 1}: ${fact.relation.change(fact.subject, fact.value, old)}`);
            break;
          }
        }
      }
    }
    chunkStatements.push(rng.shuffle(statements));
  }
  const chunks = chunkStatements.map((statements) => packChunk(rng, statements, options, 'cr'));
  const changed = rng.shuffle(facts.filter((f) => f.changed));
  const unchanged = rng.shuffle(facts.filter((f) => !f.changed));
  const asked = [...changed, ...unchanged].slice(0, options.questionsPerInstance);
  return { chunks, questions: asked.map((f) => ({ question: f.relation.question(f.subject), answers: [f.value] })) };
}

/** `count` new facts whose (subject, relation) is not among `existing`. */
function drawFactsAvoiding(rng: Rng, lexicon: Lexicon, count: number, relations: readonly Relation[], existing: readonly Fact[]): Fact[] {
  const out: Fact[] = [];
  for (let i = 0; i < count; i++) {
    // A new person every other fact keeps subjects distinct enough; pair it with an unused relation.
    const reuse = existing.length + out.length > 0 && rng.next() < 0.5;
    const pool = [...existing, ...out];
    const candidate = reuse ? pool[rng.int(pool.length)].subject : lexicon.person();
    const used = new Set(pool.filter((f) => f.subject === candidate).map((f) => f.relation.name));
    const free = relations.filter((r) => !used.has(r.name));
    const subject = free.length > 0 ? candidate : lexicon.person();
    const relation = pick(rng, free.length > 0 ? free : relations);
    out.push({ subject, relation, value: relation.value(rng, lexicon), changed: false });
  }
  return out;
}

// ─── Test-Time Learning ───────────────────────────────────────────────────────────────────────────────

function testTimeLearning(rng: Rng, chunkCount: number, options: GeneratorOptions): Body {
  const lexicon = new Lexicon(rng);
  const labels = rng.shuffle<string>([...LABELS]).slice(0, Math.min(options.classes, LABELS.length));
  const keywords = new Map(labels.map((label) => [label, Array.from({ length: 6 }, () => lexicon.word())]));
  const noise = Array.from({ length: 12 }, () => lexicon.word());
  const example = (label: string): string => {
    const own = keywords.get(label)!;
    const words = [pick(rng, own)];
    while (words.length < options.exampleWords) words.push(rng.next() < options.labelNoise ? pick(rng, noise) : pick(rng, own));
    return words.join(' ');
  };
  const chunks: string[] = [];
  for (let t = 0; t < chunkCount; t++) {
    const lines: string[] = [];
    for (let i = 0; i < options.examplesPerChunk; i++) {
      const label = pick(rng, labels);
      lines.push(`${example(label)} => label: ${label}`);
    }
    chunks.push(checkedChunk(lines.join('\n'), options, 'ttl'));
  }
  const questions: QaItem[] = [];
  for (let q = 0; q < options.questionsPerInstance; q++) {
    const label = labels[q % labels.length];
    questions.push({ question: `Classify: ${example(label)}`, answers: [label] });
  }
  return { chunks, questions: rng.shuffle(questions) };
}

// ─── Long-Range Understanding ─────────────────────────────────────────────────────────────────────────

function longRangeUnderstanding(rng: Rng, chunkCount: number, options: GeneratorOptions): Body {
  const lexicon = new Lexicon(rng);
  const hero = lexicon.person();
  const job = pick(rng, JOBS);
  const home = lexicon.place();
  const places = Array.from({ length: 2 + rng.int(3) }, () => lexicon.place());
  const companions = Array.from({ length: 1 + rng.int(2) }, () => lexicon.person());
  const objects = rng.shuffle([...OBJECTS]);
  const keywords = [hero, job, home];
  const remember = (word: string) => {
    if (!keywords.includes(word)) keywords.push(word);
  };
  let day = 0;
  let nextObject = 0;
  const chunks: string[] = [];
  for (let t = 0; t < chunkCount; t++) {
    const statements: string[] = t === 0 ? [`This is the story of ${hero}, ${article(job)} ${job} from ${home}.`] : [];
    for (let e = 0; e < options.eventsPerChunk; e++) {
      day += 1 + rng.int(3);
      const place = pick(rng, places);
      remember(place);
      if (rng.next() < 0.25) {
        const companion = pick(rng, companions);
        remember(companion);
        statements.push(`Day ${day}: ${hero} met ${companion} in ${place}.`);
      } else {
        const object = objects[nextObject++ % objects.length];
        remember(object);
        statements.push(`Day ${day}: ${hero} ${pick(rng, STORY_VERBS)} the ${object} in ${place}.`);
      }
    }
    chunks.push(packChunk(rng, statements, options, 'lru', t === 0));
  }
  return { chunks, questions: [{ question: `Summarize the story of ${hero}.`, answers: [keywords.join(', ')] }] };
}

// ─── Chunks ───────────────────────────────────────────────────────────────────────────────────────────

/**
 * Join statements (kept in order; the first stays first when `keepFirst`) with up to `fillerPerChunk`
 * filler sentences at random places, adding filler only while the chunk stays within `maxChunkTokens`.
 */
function packChunk(rng: Rng, statements: readonly string[], options: GeneratorOptions, category: Category, keepFirst = false): string {
  const sentences = [...statements];
  checkedChunk(sentences.join(' '), options, category);
  for (let i = 0; i < options.fillerPerChunk; i++) {
    const filler = fillerSentence(rng);
    const lowest = keepFirst ? 1 : 0;
    const at = lowest + rng.int(sentences.length - lowest + 1);
    const candidate = [...sentences.slice(0, at), filler, ...sentences.slice(at)];
    if (countTokens(candidate.join(' ')) <= options.maxChunkTokens) sentences.splice(0, sentences.length, ...candidate);
  }
  return sentences.join(' ');
}

function checkedChunk(text: string, options: GeneratorOptions, category: Category): string {
  const tokens = countTokens(text);
  if (tokens > options.maxChunkTokens) {
    throw new ConfigError(
      `memalpha: a ${category} chunk needs ${tokens} tokens for its statements but generator.maxChunkTokens is ${options.maxChunkTokens}; ` +
        'raise maxChunkTokens or lower factsPerChunk / examplesPerChunk / eventsPerChunk',
    );
  }
  return text;
}
