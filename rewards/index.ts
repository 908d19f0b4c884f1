/** Pure reward functions: `(history, task) => { total, parts }`. */
export type { RewardFn, Transcript } from './types.js';
export { combineRewards, type WeightedReward } from './combine.js';
export { guessReward, parseGuess, type GuessTask } from './guess.js';
