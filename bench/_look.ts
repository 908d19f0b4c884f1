import { selectBackend } from '../models/backend.js';
import { TransformerPolicy, resolvePolicyConfig } from '../models/transformer.js';
import { loadCheckpoint } from '../trainer/checkpoint.js';
import { runGroup } from '../rollout/episode.js';
import { guessEnv } from '../envs/toy/guess.js';
import { Rng } from '../core/rng.js';
import { ByteTokenizer } from '../models/tokenizer.js';
await selectBackend('wasm');
const p = new TransformerPolicy(resolvePolicyConfig({ dModel: 64, nLayers: 2, nHeads: 4, maxSeqLen: 160, ropeTheta: 10000, normEps: 1e-5, qkvBias: false, initStd: 0.02, vocabSize: 260 } as any), 1);
p.setWeights((await loadCheckpoint(process.argv[2])).model);
const tok = new ByteTokenizer();
const opts = guessEnv.optionsSchema!.parse({ maxNumber: 8, maxGuesses: 3 });
const limits = { maxTurns: 4, maxTokensPerTurn: 4, maxObservationTokens: 64, maxContextTokens: 160, temperature: 1, trainOnEndOfTurn: true, episodeRetries: 0 };
for (let g = 0; g < 3; g++) {
  const out = await runGroup(p, { env: guessEnv, envOptions: opts, task: { split: 'eval', index: g, seed: 1 }, groupSize: 4, limits, rngs: Array.from({ length: 4 }, (_, k) => new Rng(g * 10 + k)), rolloutIds: Array.from({ length: 4 }, (_, k) => `${g}/${k}`), groupId: `${g}`, policyVersion: 0 });
  for (const t of out.trajectories) {
    const s = t.segments[0];
    const parts: string[] = [];
    let cur = ''; let curOut = -1;
    s.tokens.forEach((id, i) => { const o = s.isOutput[i]; if (o !== curOut) { if (cur) parts.push(curOut ? `[${cur}]` : cur); cur = ''; curOut = o; } cur += id === 257 ? '<eot>' : id === 256 ? '<bos>' : tok.decode([id]); });
    parts.push(curOut ? `[${cur}]` : cur);
    console.log(t.reward.total, JSON.stringify(parts.join('')));
  }
}
