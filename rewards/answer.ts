/**
 * Final answers of reasoning traces: where the answer is in the text, what it is after normalisation,
 * and whether it equals the expected one (docs/delethink.md, "The verifier": the text after the
 * end-of-thinking marker must contain a final answer that the verifier accepts).
 *
 * Extraction (`extractAnswer`), in order of preference, within the text after the LAST `</think>`
 * (or the whole text when there is no marker and the marker is not required):
 *   1. the last complete `\boxed{…}` / `\fbox{…}` (nested braces balanced; an unclosed one is ignored);
 *   2. the last `answer: X` / `answer is X` / `answer = X` (case-insensitive), X up to the end of its line;
 *   3. after a marker only: the whole remaining text, if it is a single non-empty line without `\boxed`.
 *
 * Normalisation (`canonicalAnswer`) turns an answer into a canonical key; two answers are equal iff
 * their keys are equal:
 *   - LaTeX wrappers are dropped: `$…$`, `$$…$$`, `\(…\)`, `\[…\]`, `\text{…}`, `\textbf{…}`, `\mathrm{…}`,
 *     `\mathbf{…}`, `\left`, `\right`, spacing commands (`\,` `\;` `\:` `\!` `~`), `^\circ`;
 *     `\dfrac` / `\tfrac` are `\frac`, and `\frac{a}{b}` (or `\frac12`) is the fraction a/b;
 *   - a leading `name =` (as in `x = 5`) and a trailing full stop are dropped; all whitespace is removed
 *     (so `1 000` and `1\,000` are 1000); braces or parentheses around the whole answer are dropped;
 *   - percentages: a trailing `%` or `\%` is dropped on both sides, so `50%` equals `50` (and not 0.5);
 *   - numbers are exact rationals: optional sign, digits with optional comma thousands separators (groups of
 *     exactly three: `1,234,567`; `1,23` is not a number), optional decimals, or a fraction a/b of two such
 *     numbers with b ≠ 0. `007` = 7, `+5` = 5, `-0` = 0, `12.0` = 12, `0.50` = 1/2 = `\frac{1}{2}`, while
 *     `0.33` ≠ 1/3 and `12` ≠ 120. Exponent notation (`1e3`) is not a number;
 *   - anything else is compared as text, case-insensitively, after the steps above.
 *
 * Worked example: `"… 7:6=52 </think> The answer is $\boxed{\dfrac{104}{2}}$."` against expected `52`
 * → extracted `\dfrac{104}{2}` → canonical `num:52/1` = canonical of `52` → correct.
 * Pure: no I/O, no clock, no randomness.
 */

/** The end-of-thinking marker: the answer is read from the text after its last occurrence. */
export const END_OF_THINKING = '</think>';

/** How strict extraction is. */
export interface AnswerOptions {
  /**
   * When true, a response without `</think>` has no answer (the paper's reward: the answer must follow
   * the end of thinking). Default false: without a marker the whole response is searched.
   */
  readonly requireEndOfThinking?: boolean;
}

/** Where an extracted answer came from. */
export type AnswerSource = 'boxed' | 'answer-line' | 'after-marker';

/** Result of `extractAnswer`. */
export interface ExtractedAnswer {
  /** The raw answer text (before normalisation); undefined when none was found. */
  readonly answer?: string;
  readonly source?: AnswerSource;
}

/** Why a response was accepted or rejected. */
export type VerdictReason = 'correct' | 'wrong_answer' | 'no_answer' | 'no_end_of_thinking';

/** Result of `verifyAnswer`. */
export interface AnswerVerdict {
  readonly correct: boolean;
  /** The answer found in the response (raw text), when one was found. */
  readonly extracted?: string;
  readonly reason: VerdictReason;
}

/**
 * Find the final answer in `text` (see the module comment for the rules). Returns `{}` when there is none.
 * Example: `"s=3 </think> \boxed{4} \boxed{5}"` → `{ answer: '5', source: 'boxed' }` (the last one).
 */
export function extractAnswer(text: string, options: AnswerOptions = {}): ExtractedAnswer {
  const marker = text.lastIndexOf(END_OF_THINKING);
  if (marker < 0 && options.requireEndOfThinking) return {};
  const region = marker >= 0 ? text.slice(marker + END_OF_THINKING.length) : text;

  const boxed = lastBoxedContent(region);
  if (boxed !== undefined && boxed.trim() !== '') return { answer: boxed.trim(), source: 'boxed' };

  const lines = [...region.matchAll(/answer\s*(?:is|:|=)\s*([^\n]*)/gi)];
  for (let i = lines.length - 1; i >= 0; i--) {
    const candidate = stripSentenceEnd(lines[i][1]);
    if (candidate !== '') return { answer: candidate, source: 'answer-line' };
  }

  if (marker >= 0) {
    const rest = region.trim();
    // An empty or unclosed \boxed is a missing answer, not a bare one.
    if (rest !== '' && !rest.includes('\n') && !/\\(?:boxed|fbox)/.test(rest))
      return { answer: stripSentenceEnd(rest), source: 'after-marker' };
  }
  return {};
}

/**
 * Verify `responseText` against the `expected` answer: extract, normalise both, compare keys.
 * Examples (no options): `"</think> \boxed{1,234}"` vs 1234 → correct; `"</think> \boxed{12}"` vs 120 →
 * wrong_answer; `"thinking…"` vs 3 → no_answer; with `requireEndOfThinking`, `"\boxed{3}"` vs 3 →
 * no_end_of_thinking. Throws RangeError when `expected` is empty after normalisation (a data error).
 */
export function verifyAnswer(responseText: string, expected: string | number, options: AnswerOptions = {}): AnswerVerdict {
  const expectedKey = canonicalAnswer(String(expected));
  if (expectedKey === 'str:') throw new RangeError(`expected answer ${JSON.stringify(expected)} is empty after normalisation`);
  const { answer } = extractAnswer(responseText, options);
  if (answer === undefined) {
    const missingMarker = options.requireEndOfThinking === true && !responseText.includes(END_OF_THINKING);
    return { correct: false, reason: missingMarker ? 'no_end_of_thinking' : 'no_answer' };
  }
  const correct = canonicalAnswer(answer) === expectedKey;
  return { correct, extracted: answer, reason: correct ? 'correct' : 'wrong_answer' };
}

/** True when two answers are equivalent under the normalisation rules. */
export function answersEqual(a: string, b: string): boolean {
  return canonicalAnswer(a) === canonicalAnswer(b);
}

/**
 * The comparison key of an answer: `num:<p>/<q>` (reduced, q > 0) for a number, `str:<text>` otherwise.
 * Examples: `"1,234.50"` → `num:2469/2`; `"\frac{-2}{4}"` → `num:-1/2`; `"\text{Paris}"` → `str:paris`.
 */
export function canonicalAnswer(raw: string): string {
  const text = normaliseLatex(raw);
  const value = parseRational(text);
  return value ? `num:${value.p}/${value.q}` : `str:${text.toLowerCase()}`;
}

/** An exact rational p/q in lowest terms, q > 0. */
export interface Rational {
  readonly p: bigint;
  readonly q: bigint;
}

/**
 * The number a normalised answer (no whitespace) names, or undefined. Accepts `[+-]digits[.digits]`
 * (digits possibly grouped `1,234`), `.5`, and `a/b` of two such numbers (parenthesised or not), b ≠ 0.
 */
export function parseRational(text: string): Rational | undefined {
  const fraction = /^([+-]?)\(?([^()/]+)\)?\/\(?([^()/]+)\)?$/.exec(text);
  if (fraction) {
    const num = parseDecimal(fraction[2]);
    const den = parseDecimal(fraction[3]);
    if (!num || !den || den.p === 0n) return undefined;
    const sign = fraction[1] === '-' ? -1n : 1n;
    return reduce(sign * num.p * den.q, num.q * den.p);
  }
  return parseDecimal(text);
}

// ─── Internals ─────────────────────────────────────────────────────────────────────────────────────

/** Content of the last balanced `\boxed{…}` / `\fbox{…}` (or `\boxed 5`) in `text`. */
function lastBoxedContent(text: string): string | undefined {
  let found: string | undefined;
  const starts = /\\(?:boxed|fbox)\s*/g;
  for (let match = starts.exec(text); match !== null; match = starts.exec(text)) {
    const open = match.index + match[0].length;
    if (text[open] === '{') {
      let depth = 0;
      for (let i = open; i < text.length; i++) {
        if (text[i] === '{') depth++;
        else if (text[i] === '}' && --depth === 0) {
          found = text.slice(open + 1, i);
          break;
        }
      }
    } else if (/\s$/.test(match[0])) {
      // `\boxed 5`: the argument is the next run of non-space characters.
      const bare = /^[^\s$]+/.exec(text.slice(open));
      if (bare) found = bare[0];
    }
  }
  return found;
}

/** Drop a trailing full stop / comma / semicolon and surrounding whitespace. */
function stripSentenceEnd(text: string): string {
  return text
    .trim()
    .replace(/[.,;]+$/, '')
    .trim();
}

/** LaTeX and presentation clean-up shared by answers and expected values (see module comment). */
function normaliseLatex(raw: string): string {
  let s = raw.trim();
  // Math delimiters around the whole answer.
  for (;;) {
    const unwrapped = s
      .replace(/^\$\$([\s\S]*)\$\$$/, '$1')
      .replace(/^\$([\s\S]*)\$$/, '$1')
      .replace(/^\\\(([\s\S]*)\\\)$/, '$1')
      .replace(/^\\\[([\s\S]*)\\\]$/, '$1')
      .trim();
    if (unwrapped === s) break;
    s = unwrapped;
  }
  // Text-like wrappers, innermost first.
  for (let guard = 0; guard < 20; guard++) {
    const next = s.replace(/\\(?:text|textbf|textrm|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}/g, '$1');
    if (next === s) break;
    s = next;
  }
  s = s.replace(/\\[dt]frac/g, '\\frac');
  // \frac{a}{b} → (a)/(b), innermost first; \frac12 → (1)/(2).
  for (let guard = 0; guard < 20; guard++) {
    const next = s.replace(/\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}/g, '($1)/($2)').replace(/\\frac\s*(\d)\s*(\d)/g, '($1)/($2)');
    if (next === s) break;
    s = next;
  }
  s = s
    .replace(/\\left|\\right/g, '')
    .replace(/\\[,;:! ]/g, '')
    .replace(/~/g, '')
    .replace(/\^\s*\{?\s*\\circ\s*\}?/g, '')
    .replace(/\\%/g, '%');
  s = stripSentenceEnd(s);
  // `x = 5` → `5` (a single leading assignment to a name).
  s = s.replace(/^[A-Za-z][A-Za-z0-9_]*\s*=\s*(?=\S)/, '');
  s = s.replace(/\s+/g, '');
  s = s.replace(/%$/, '');
  // Braces or parentheses around the whole answer (`{5}`, `((1)/(3))`) carry nothing.
  for (;;) {
    const inner = s.startsWith('{') ? unwrapGroup(s, '{', '}') : s.startsWith('(') ? unwrapGroup(s, '(', ')') : undefined;
    if (inner === undefined) return s;
    s = inner;
  }
}

/** The content of `s` when its first character's group closes at its last character, else undefined. */
function unwrapGroup(s: string, open: string, close: string): string | undefined {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === open) depth++;
    else if (s[i] === close && --depth === 0) return i === s.length - 1 ? s.slice(1, -1) : undefined;
  }
  return undefined;
}

/** `[+-]digits[.digits]` with optional comma thousands grouping, or `.5` / `5.`; exact. */
function parseDecimal(text: string): Rational | undefined {
  const match = /^([+-]?)(\d{1,3}(?:,\d{3})+|\d*)(?:\.(\d*))?$/.exec(text);
  if (!match) return undefined;
  const integer = match[2].replace(/,/g, '');
  const decimals = match[3] ?? '';
  if (integer === '' && decimals === '') return undefined;
  const q = 10n ** BigInt(decimals.length);
  const magnitude = BigInt(integer === '' ? '0' : integer) * q + BigInt(decimals === '' ? '0' : decimals);
  return reduce(match[1] === '-' ? -magnitude : magnitude, q);
}

function reduce(p: bigint, q: bigint): Rational {
  if (q < 0n) {
    p = -p;
    q = -q;
  }
  const g = gcd(p < 0n ? -p : p, q);
  // p = 0 (negative zero included) becomes 0/1.
  return g === 0n ? { p: 0n, q: 1n } : { p: p / g, q: q / g };
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}
