/**
 * The final-answer verifier (rewards/answer.ts): where the answer is read from, which written forms of
 * the same value are accepted, and near misses that must be rejected.
 */
import { describe, expect, it } from 'vitest';
import { answersEqual, canonicalAnswer, extractAnswer, parseRational, verifyAnswer } from '../../../rewards/answer.js';

describe('extractAnswer', () => {
  it('reads the last complete \\boxed{} after the last </think>, with nested braces', () => {
    expect(extractAnswer('x </think> so \\boxed{\\frac{1}{2}} done')).toEqual({ answer: '\\frac{1}{2}', source: 'boxed' });
    expect(extractAnswer('\\boxed{7} </think> \\boxed{4} then \\boxed{5}')).toEqual({ answer: '5', source: 'boxed' });
    // A boxed answer in the thinking part does not count once a marker exists.
    expect(extractAnswer('\\boxed{7} </think> nothing here\nat all')).toEqual({});
    // An unclosed \boxed{ (a trace cut mid-answer) is ignored.
    expect(extractAnswer('</think> \\boxed{4} \\boxed{12')).toEqual({ answer: '4', source: 'boxed' });
    expect(extractAnswer('</think> \\boxed{12')).toEqual({});
  });

  it('falls back to "answer: X", then to a single line after the marker', () => {
    expect(extractAnswer('work\nThe final answer is 42.\n')).toEqual({ answer: '42', source: 'answer-line' });
    expect(extractAnswer('Answer: $-3$\nanswer = 5')).toEqual({ answer: '5', source: 'answer-line' });
    expect(extractAnswer('think </think> 17')).toEqual({ answer: '17', source: 'after-marker' });
    expect(extractAnswer('think </think> 17\nand more')).toEqual({});
    expect(extractAnswer('no marker and no answer 17')).toEqual({});
  });

  it('with requireEndOfThinking, finds nothing without the marker', () => {
    expect(extractAnswer('\\boxed{3}', { requireEndOfThinking: true })).toEqual({});
    expect(extractAnswer('a </think> \\boxed{3}', { requireEndOfThinking: true })).toEqual({ answer: '3', source: 'boxed' });
  });
});

describe('verifyAnswer accepts equivalent forms', () => {
  const accepted: Array<[string, string | number]> = [
    ['</think> \\boxed{43}', 43],
    ['</think> \\boxed{1,234}', '1234'],
    ['</think> \\boxed{1,234,567.0}', 1234567],
    ['</think> \\boxed{007}', '7'],
    ['</think> \\boxed{+5}', 5],
    ['</think> \\boxed{-0}', '0'],
    ['</think> \\boxed{12.50}', '12.5'],
    ['</think> \\boxed{0.5}', '1/2'],
    ['</think> \\boxed{\\dfrac{1}{2}}', '0.5'],
    ['</think> \\boxed{\\frac{-6}{4}}', '-1.5'],
    ['</think> \\boxed{-\\tfrac{3}{2}}', '-3/2'],
    ['</think> \\boxed{\\frac12}', '0.5'],
    ['</think> \\boxed{.25}', '1/4'],
    ['</think> \\boxed{\\text{Paris}}', 'paris'],
    ['</think> \\boxed{50\\%}', '50'],
    ['</think> \\boxed{50%}', '50\\%'],
    ['</think> \\boxed{1\\,000}', '1000'],
    ['</think> \\boxed{x = 5}', '5'],
    ['</think> $\\boxed{ 8 }$.', '8'],
    ['</think> The answer is $\\frac{3}{4}$.', '0.75'],
    ['</think>   391  ', '391'],
    ['</think> \\boxed{90^\\circ}', '90'],
    ['</think> \\boxed{\\left(\\frac{1}{3}\\right)}', '1/3'],
    ['</think> \\boxed 7', 7],
  ];
  it.each(accepted)('%s ≡ %s', (response, expected) => {
    const verdict = verifyAnswer(response, expected);
    expect(verdict.reason).toBe('correct');
    expect(verdict.correct).toBe(true);
  });
});

describe('verifyAnswer rejects near misses', () => {
  const rejected: Array<[string, string | number, string]> = [
    ['</think> \\boxed{12}', 120, 'wrong_answer'],
    ['</think> \\boxed{120}', 12, 'wrong_answer'],
    ['</think> \\boxed{0.33}', '1/3', 'wrong_answer'],
    ['</think> \\boxed{0.333333}', '\\frac{1}{3}', 'wrong_answer'],
    ['</think> \\boxed{50%}', '0.5', 'wrong_answer'],
    ['</think> \\boxed{-5}', 5, 'wrong_answer'],
    ['</think> \\boxed{1,23}', 123, 'wrong_answer'],
    ['</think> \\boxed{1e3}', 1000, 'wrong_answer'],
    ['</think> \\boxed{1/0}', 'inf', 'wrong_answer'],
    ['</think> \\boxed{43} \\boxed{44}', 43, 'wrong_answer'],
    ['</think> \\boxed{1\\frac{1}{2}}', '11/2', 'wrong_answer'],
    ['s=3 s=4 s=5', 5, 'no_answer'],
    ['</think>', 5, 'no_answer'],
    ['</think> \\boxed{}', 5, 'no_answer'],
  ];
  it.each(rejected)('%s vs %s → %s', (response, expected, reason) => {
    const verdict = verifyAnswer(response, expected);
    expect(verdict.correct).toBe(false);
    expect(verdict.reason).toBe(reason);
  });

  it('uses the last of two boxed answers', () => {
    expect(verifyAnswer('</think> \\boxed{43} or rather \\boxed{44}', 44)).toEqual({ correct: true, extracted: '44', reason: 'correct' });
  });

  it('reports a missing end-of-thinking marker when it is required', () => {
    expect(verifyAnswer('\\boxed{3}', 3, { requireEndOfThinking: true })).toEqual({ correct: false, reason: 'no_end_of_thinking' });
    expect(verifyAnswer('\\boxed{3}', 3)).toEqual({ correct: true, extracted: '3', reason: 'correct' });
  });

  it('refuses an empty expected answer (a data error, not a wrong response)', () => {
    expect(() => verifyAnswer('</think> 3', '  ')).toThrow(RangeError);
  });
});

describe('canonical forms', () => {
  it('reduces numbers to exact rationals', () => {
    expect(parseRational('1,234.50')).toEqual({ p: 2469n, q: 2n });
    expect(parseRational('-0.0')).toEqual({ p: 0n, q: 1n });
    expect(parseRational('6/-4')).toEqual({ p: -3n, q: 2n });
    expect(parseRational('12,34')).toBeUndefined();
    expect(parseRational('.')).toBeUndefined();
    expect(canonicalAnswer('\\frac{-2}{4}')).toBe('num:-1/2');
    expect(canonicalAnswer('\\text{Paris}')).toBe('str:paris');
  });

  it('is exact for long numbers (no float rounding)', () => {
    expect(answersEqual('12345678901234567890', '12345678901234567891')).toBe(false);
    expect(answersEqual('12,345,678,901,234,567,890', '12345678901234567890.000')).toBe(true);
  });
});
