import { selectBackend } from '../models/backend.js';
import { TransformerPolicy, resolvePolicyConfig } from '../models/transformer.js';
import { loadCheckpoint } from '../trainer/checkpoint.js';
import { runGroup } from '../rollout/episode.js';
import { guessEnv } from '../envs/toy/guess.js';
import { Rng } from '../core/rng.js';
import { ByteTokenizer } from '../models/tokenizer.js';
await selectBackend('wasm');
const tok = new ByteTokenizer();
for (const ck of process.argv.slice(2)) {
  const p = new TransformerPolicy(resolvePolicyConfig({ dModel: 64, nLayers: 2, nHeads: 4, maxSeqLen: 160, ropeTheta: 10000, normEps: 1e-5, qkvBias: false, initStd: 0.02, vocabSize: 260 } as any), 1);
  p.setWeights((await loadCheckpoint(ck)).model);
  const opts = guessEnv.optionsSchema!.parse({ maxNumber: 8, maxGuesses: 3, hints: true });
  const limits = { maxTurns: 4, maxTokensPerTurn: 4, maxObservationTokens: 64, maxContextTokens: 160, temperature: 1, trainOnEndOfTurn: true, episodeRetries: 0 };
  const hist: Record<string, number> = {}; let wins = 0, n = 0;
  for (let g = 0; g < 32; g++) {
    const out = await runGroup(p, { env: guessEnv, envOptions: opts, task: { split: 'eval', index: g, seed: 1 }, groupSize: 8, limits, rngs: Array.from({ length: 8 }, (_, k) => new Rng(g * 10 + k)), rolloutIds: Array.from({ length: 8 }, (_, k) => `${g}/${k}`), groupId: `${g}`, policyVersion: 0 });
    for (const t of out.trajectories) {
      const s = t.segments[0];
      const first = s.tokens.filter((_, i) => s.turn[i] === 0 && s.isOutput[i]).filter((x) => x !== 257);
      const key = tok.decode(first); hist[key] = (hist[key] ?? 0) + 1; wins += t.reward.total; n++;
    }
  }
  console.log(ck.split('/').at(-1), 'success', (wins / n).toFixed(3), JSON.stringify(Object.entries(hist).sort((a, b) => b[1] - a[1]).slice(0, 9)));
  p.dispose();
}
