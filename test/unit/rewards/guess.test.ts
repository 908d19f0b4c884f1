import { describe, expect, it } from 'vitest';
import { guessReward, parseGuess, type GuessTask } from '../../../rewards/guess.js';
import type { Transcript } from '../../../rewards/types.js';

const task: GuessTask = { target: 10, maxNumber: 16, maxGuesses: 5 };
const prompt = { role: 'env', text: 'Guess my number from 1 to 16.\n' } as const;

/** A transcript from policy turns, with placeholder env replies (the reward reads only the policy turns). */
function transcriptOf(...guesses: string[]): Transcript {
  return [prompt, ...guesses.flatMap((text) => [{ role: 'policy', text } as const, { role: 'env', text: '…\n' } as const])];
}

describe('guessReward', () => {
  it('replays the worked example from its doc comment', () => {
    const history: Transcript = [
      prompt,
      { role: 'policy', text: '8' },
      { role: 'env', text: 'higher\n' },
      { role: 'policy', text: '12' },
      { role: 'env', text: 'lower\n' },
      { role: 'policy', text: 'ten' },
      { role: 'env', text: 'invalid guess: write a whole number from 1 to 16\n' },
      { role: 'policy', text: ' 10\n' },
      { role: 'env', text: 'correct\n' },
    ];
    expect(guessReward(history, task)).toEqual({ total: 1, parts: { solved: 1, guesses: 4, invalid: 1 } });
  });

  it('gives 0 when the target is named only after the cap', () => {
    expect(guessReward(transcriptOf('1', '2', '3', '4', '5', '10'), task)).toEqual({
      total: 0,
      parts: { solved: 0, guesses: 5, invalid: 0 },
    });
    expect(guessReward(transcriptOf('1', '2', '3', '4', '10'), task)).toEqual({ total: 1, parts: { solved: 1, guesses: 5, invalid: 0 } });
  });

  it('stops counting at the first correct guess', () => {
    expect(guessReward(transcriptOf('10', 'x', 'y'), task)).toEqual({ total: 1, parts: { solved: 1, guesses: 1, invalid: 0 } });
  });

  it('scores an episode with no guesses as 0', () => {
    expect(guessReward([prompt], task)).toEqual({ total: 0, parts: { solved: 0, guesses: 0, invalid: 0 } });
  });

  it('is pure: the same input gives the same reward and the input is untouched', () => {
    const history = transcriptOf('3', '10');
    const copy = structuredClone(history);
    expect(guessReward(history, task)).toEqual(guessReward(history, task));
    expect(history).toEqual(copy);
  });
});

describe('parseGuess', () => {
  it('accepts decimal digits with surrounding whitespace, within 1..maxNumber', () => {
    expect(parseGuess('7', 16)).toBe(7);
    expect(parseGuess('  16 \n', 16)).toBe(16);
    expect(parseGuess('07', 16)).toBe(7);
    expect(parseGuess('1', 16)).toBe(1);
  });

  it('rejects anything else', () => {
    for (const text of ['', ' ', '0', '17', '-3', '+3', '3.0', '3e1', 'three', '3 4', '12345678901234567890', '３']) {
      expect(parseGuess(text, 16), JSON.stringify(text)).toBeUndefined();
    }
  });
});
