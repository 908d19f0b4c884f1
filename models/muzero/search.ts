/**
 * Monte-Carlo tree search for MuZero (spec "Search"), over a batch of games in lock-step: every
 * simulation step descends each game's tree once and evaluates all the new leaves with **one** network
 * call. Two root/interior rules:
 *
 *  - `puct` (MuZero, Schrittwieser et al. 2020, appendix B): argmax_a Q̄(s,a) + P(s,a)·√N(s)/(1 + N(s,a))
 *    ·(c1 + log((N(s) + c2 + 1)/c2)), Q̄ min-max normalised over the tree to [0, 1] (0 for unvisited);
 *    Dirichlet noise on the root prior, P ← (1 − ε)P + ε·Dir(α), α = concentration / #legal. The action
 *    is sampled ∝ N^(1/temperature) (argmax at temperature 0); the policy target is N / ΣN.
 *  - `gumbel` (Gumbel MuZero, Danihelka et al. 2022): at the root, Gumbel noise g(a) and the top-m
 *    actions by g + logits, then sequential halving — phases of equal visits to the remaining actions,
 *    keeping the best half by g + logits + σ(q̂) — which the visit schedule below encodes; completed Q:
 *    q(a) for visited actions, the mixed value v_mix for the rest, min-max rescaled over the node's
 *    actions; σ(q̂) = (c_visit + max_b N(b))·c_scale·q̂. Interior nodes pick
 *    argmax_a π'(a) − N(a)/(1 + ΣN) with π' = softmax(logits + σ(q̂)). The action is the halving
 *    winner; the policy target is softmax(logits + σ(q̂)) at the root.
 *
 * Illegal actions are masked at the root (and at every node of the true-simulator arm, which knows the
 * rules); the latent arm lets interior nodes take any action, as MuZero does. Every node counts its own
 * network evaluation as its first visit, so after n simulations the root's children hold n visits
 * (invariant 8).
 *
 * Dynamics: `learned` expands with the networks' g (MuZero); `simulator` expands with the real game —
 * clone(), step(a) for the exact reward and next state, the networks only for priors and values
 * (AlphaZero-style), the control arm.
 */
import { ConfigError } from '../../core/errors.js';
import type { Rng } from '../../core/rng.js';
import { SearchConfigSchema, type SearchConfig, type SearchConfigInput } from '../../configs/muzero.js';
import type { InferenceBatch, SearchModel } from './networks.js';
import { trimGpuBufferPool } from '../backend.js';

/** Declared in configs/muzero.ts, with the run config that embeds it. */
export { SearchConfigSchema, type SearchConfig };

/** Fill in defaults and validate; throws ConfigError naming the field. */
export function resolveSearchConfig(input: SearchConfigInput = {}): SearchConfig {
  const parsed = SearchConfigSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`muzero.search.${issue.path.join('.')}: ${issue.message}`, { context: { path: issue.path } });
  }
  return Object.freeze(parsed.data);
}

/** A game the true-simulator arm can expand with (MallocGame satisfies it). */
export interface SearchGame {
  readonly done: boolean;
  clone(): SearchGame;
  /** Applies a legal action; returns its reward. */
  step(action: number): number;
  /** [A] 1 = legal; read before the next step. */
  legalMask(): Uint8Array;
  /** Writes the observation into out[at..]. */
  observe(out: Float32Array, at?: number): void;
}

/** One position to search from. */
export interface SearchRoot {
  /** [O] the position's observation. */
  readonly observation: Float32Array;
  /** [A] legal actions at the root (SLOW must be among them). */
  readonly legalMask: Uint8Array;
  /** The position itself; required when `dynamics` is `simulator`. Never stepped (search clones it). */
  readonly game?: SearchGame;
}

/** What search returns for one root. */
export interface SearchOutput {
  /** The action to play. */
  readonly action: number;
  /** [A] visits of the root's children; Σ = simulations. */
  readonly visitCounts: Int32Array;
  /** [A] policy target π: zero on illegal actions, sums to 1. */
  readonly policyTarget: Float32Array;
  /** [A] root Q̄ the selection used, in [0, 1] (pUCT: min-max normalised, 0 unvisited; Gumbel: completed and rescaled). */
  readonly normalizedQ: Float32Array;
  /** Search value ν of the root: mean of its evaluation and every backed-up return. */
  readonly rootValue: number;
  /** v̂ of the root from the network. */
  readonly networkValue: number;
}

/**
 * Search every root with `config.simulations` simulations, batching the network across roots (one
 * initial call, then one call per simulation step). `rng` draws the root noise and sampled actions, in
 * root order, so results are reproducible.
 */
export async function runSearch(model: SearchModel, roots: readonly SearchRoot[], config: SearchConfig, rng: Rng): Promise<SearchOutput[]> {
  const B = roots.length;
  if (B === 0) return [];
  const A = model.numActions;
  const simulator = config.dynamics === 'simulator';
  const observationSize = roots[0].observation.length;
  const observations = new Float32Array(B * observationSize);
  roots.forEach((root, i) => {
    if (root.legalMask.length !== A)
      throw new RangeError(`root ${i}: legal mask has ${root.legalMask.length} entries, the model has ${A} actions`);
    if (!root.legalMask.some((x) => x === 1)) throw new RangeError(`root ${i} has no legal action`);
    if (simulator && (root.game === undefined || root.game.done))
      throw new RangeError(`root ${i}: the simulator arm needs a live game at every root`);
    observations.set(root.observation, i * observationSize);
  });
  const initial = await model.initialInference(observations, B);
  const trees = roots.map((root, i) => {
    const tree = new SearchTree(A, simulator ? 0 : model.stateSize, config);
    tree.addRoot(initial, i, root.legalMask, simulator ? root.game : undefined);
    tree.prepareRoot(rng);
    return tree;
  });

  const pendingTrees: SearchTree[] = [];
  const states = simulator ? new Float32Array(0) : new Float32Array(B * model.stateSize);
  const actions = new Int32Array(B);
  const childObservations = simulator ? new Float32Array(B * observationSize) : new Float32Array(0);
  const childGames: Array<SearchGame | undefined> = new Array(B);
  const childRewards = new Float64Array(B);
  for (let sim = 0; sim < config.simulations; sim++) {
    pendingTrees.length = 0;
    for (const tree of trees) {
      const leaf = tree.descend(sim);
      if (leaf.parent < 0)
        tree.backup(0); // a terminal node: value 0, nothing to expand
      else pendingTrees.push(tree);
    }
    if (pendingTrees.length === 0) continue;
    if (!simulator) {
      pendingTrees.forEach((tree, j) => {
        states.set(tree.stateOf(tree.pendingParent), j * model.stateSize);
        actions[j] = tree.pendingAction;
      });
      const out = await model.recurrentInference(states, actions, pendingTrees.length);
      trimGpuBufferPool();
      pendingTrees.forEach((tree, j) =>
        tree.expandPending(out.rewards[j], out.values[j], out.policyLogits, j * A, null, out.states, j * model.stateSize, undefined, false),
      );
      continue;
    }
    // Simulator arm: real transitions; the network only scores the non-terminal children.
    let live = 0;
    const liveIndex = new Int32Array(pendingTrees.length).fill(-1);
    pendingTrees.forEach((tree, j) => {
      const game = (tree.gameOf(tree.pendingParent) as SearchGame).clone();
      childRewards[j] = game.step(tree.pendingAction);
      childGames[j] = game;
      if (!game.done) {
        game.observe(childObservations, live * observationSize);
        liveIndex[j] = live++;
      }
    });
    const out = live > 0 ? await model.initialInference(childObservations, live) : undefined;
    pendingTrees.forEach((tree, j) => {
      const game = childGames[j] as SearchGame;
      const k = liveIndex[j];
      if (k < 0) tree.expandPending(childRewards[j], 0, null, 0, null, null, 0, game, true);
      else
        tree.expandPending(
          childRewards[j],
          (out as InferenceBatch).values[k],
          (out as InferenceBatch).policyLogits,
          k * A,
          game.legalMask(),
          null,
          0,
          game,
          false,
        );
      childGames[j] = undefined;
    });
  }
  return trees.map((tree) => tree.result(rng));
}

/**
 * Visits-per-action schedule of sequential halving for m considered actions and n simulations:
 * entry k is the visit count that the action chosen at simulation k must currently have. Phases of
 * ⌈log2 m⌉; in each, every remaining action gets max(1, ⌊n / (⌈log2 m⌉ · remaining)⌋) more visits, then
 * the remaining set halves (never below 2). With m ≤ 1 it is 0, 1, 2, … (one action takes every visit).
 */
export function sequentialHalvingSchedule(m: number, n: number): Int32Array {
  const out = new Int32Array(n);
  if (m <= 1) {
    for (let k = 0; k < n; k++) out[k] = k;
    return out;
  }
  const phases = Math.ceil(Math.log2(m));
  let remaining = m;
  let level = 0;
  let k = 0;
  while (k < n) {
    const perAction = Math.max(1, Math.floor(n / (phases * remaining)));
    for (let v = 0; v < perAction && k < n; v++, level++) {
      for (let i = 0; i < remaining && k < n; i++) out[k++] = level;
    }
    remaining = Math.max(2, Math.floor(remaining / 2));
  }
  return out;
}

/** One game's search tree in flat typed arrays (node-major; per-action arrays are [nodes · A]). */
class SearchTree {
  readonly capacity: number;
  count = 0;
  readonly visits: Int32Array;
  readonly valueSum: Float64Array;
  /** Reward on the edge into the node. */
  readonly reward: Float64Array;
  readonly networkValue: Float64Array;
  readonly terminal: Uint8Array;
  /** Raw policy logits per node and action. */
  readonly logits: Float32Array;
  /** Prior P(s, a): softmax of the logits over legal actions (root: with Dirichlet noise for pUCT). */
  readonly prior: Float32Array;
  readonly children: Int32Array;
  readonly legal: Uint8Array;
  readonly states: Float32Array;
  readonly games: Array<SearchGame | undefined>;
  /** Min and max of Q over the tree (pUCT normalisation). */
  private qMin = Infinity;
  private qMax = -Infinity;
  /** Root-only Gumbel data. */
  private readonly gumbel: Float64Array;
  private schedule: Int32Array = new Int32Array(0);
  /** Descent path, root first. */
  private readonly path: Int32Array;
  private pathLength = 0;
  pendingParent = -1;
  pendingAction = -1;
  // Scratch for completed Q.
  private readonly scratchQ: Float64Array;
  private readonly scratchScore: Float64Array;

  constructor(
    readonly A: number,
    readonly D: number,
    readonly config: SearchConfig,
  ) {
    const cap = config.simulations + 1;
    this.capacity = cap;
    this.visits = new Int32Array(cap);
    this.valueSum = new Float64Array(cap);
    this.reward = new Float64Array(cap);
    this.networkValue = new Float64Array(cap);
    this.terminal = new Uint8Array(cap);
    this.logits = new Float32Array(cap * A);
    this.prior = new Float32Array(cap * A);
    this.children = new Int32Array(cap * A).fill(-1);
    this.legal = new Uint8Array(cap * A);
    this.states = new Float32Array(cap * D);
    this.games = new Array(cap);
    this.gumbel = new Float64Array(A);
    this.path = new Int32Array(cap + 1);
    this.scratchQ = new Float64Array(A);
    this.scratchScore = new Float64Array(A);
  }

  addRoot(initial: InferenceBatch, i: number, legalMask: Uint8Array, game: SearchGame | undefined): void {
    this.addNode(0, initial.values[i], initial.policyLogits, i * this.A, legalMask, initial.states, i * this.D, game, false);
    this.path[0] = 0;
    this.pathLength = 1;
    this.backup(initial.values[i]);
  }

  /** Root noise: Dirichlet for pUCT, Gumbel samples and the halving schedule for Gumbel. */
  prepareRoot(rng: Rng): void {
    const { A, config } = this;
    let legalCount = 0;
    for (let a = 0; a < A; a++) legalCount += this.legal[a];
    if (config.algorithm === 'puct') {
      const epsilon = config.rootExplorationFraction;
      if (epsilon === 0) return;
      const noise = sampleDirichlet(rng, config.dirichletConcentration / legalCount, legalCount);
      for (let a = 0, j = 0; a < A; a++) {
        if (this.legal[a]) this.prior[a] = (1 - epsilon) * this.prior[a] + epsilon * noise[j++];
      }
      return;
    }
    for (let a = 0; a < A; a++) this.gumbel[a] = this.legal[a] ? config.gumbelScale * sampleGumbel(rng) : -Infinity;
    this.schedule = sequentialHalvingSchedule(Math.min(config.maxConsideredActions, legalCount), config.simulations);
  }

  /** Walk from the root to a leaf; sets pendingParent/pendingAction (−1 when the leaf is terminal). */
  descend(sim: number): { parent: number } {
    let node = 0;
    this.pathLength = 1;
    this.path[0] = 0;
    for (;;) {
      if (this.terminal[node]) {
        this.pendingParent = -1;
        return { parent: -1 };
      }
      const action =
        this.config.algorithm === 'puct'
          ? this.selectPuct(node)
          : node === 0
            ? this.selectGumbelRoot(sim)
            : this.selectGumbelInterior(node);
      const child = this.children[node * this.A + action];
      if (child < 0) {
        this.pendingParent = node;
        this.pendingAction = action;
        return { parent: node };
      }
      node = child;
      this.path[this.pathLength++] = node;
    }
  }

  stateOf(node: number): Float32Array {
    return this.states.subarray(node * this.D, (node + 1) * this.D);
  }

  gameOf(node: number): SearchGame | undefined {
    return this.games[node];
  }

  /** Create the pending child and back its value up the path. */
  expandPending(
    reward: number,
    value: number,
    logits: Float32Array | null,
    logitsAt: number,
    legalMask: Uint8Array | null,
    states: Float32Array | null,
    statesAt: number,
    game: SearchGame | undefined,
    terminal: boolean,
  ): void {
    const child = this.addNode(reward, value, logits, logitsAt, legalMask, states, statesAt, game, terminal);
    this.children[this.pendingParent * this.A + this.pendingAction] = child;
    this.path[this.pathLength++] = child;
    this.backup(value);
  }

  /** Back a leaf value up the current path: each node gains a visit and the discounted return from it. */
  backup(leafValue: number): void {
    const gamma = this.config.discount;
    let G = leafValue;
    for (let j = this.pathLength - 1; j >= 0; j--) {
      const node = this.path[j];
      this.valueSum[node] += G;
      this.visits[node] += 1;
      if (j > 0) {
        const q = this.reward[node] + gamma * (this.valueSum[node] / this.visits[node]);
        if (q < this.qMin) this.qMin = q;
        if (q > this.qMax) this.qMax = q;
      }
      G = this.reward[node] + gamma * G;
    }
  }

  /** Outputs for the root (see SearchOutput). */
  result(rng: Rng): SearchOutput {
    const { A, config } = this;
    const visitCounts = new Int32Array(A);
    for (let a = 0; a < A; a++) {
      const c = this.children[a];
      visitCounts[a] = c >= 0 ? this.visits[c] : 0;
    }
    const policyTarget = new Float32Array(A);
    const normalizedQ = new Float32Array(A);
    let action: number;
    if (config.algorithm === 'puct') {
      let total = 0;
      for (let a = 0; a < A; a++) total += visitCounts[a];
      for (let a = 0; a < A; a++) {
        policyTarget[a] = visitCounts[a] / total;
        const c = this.children[a];
        normalizedQ[a] = c >= 0 ? this.normalize(this.qOf(c)) : 0;
      }
      action =
        config.temperature === 0 ? argmaxInt(visitCounts, this.legal, 0) : sampleVisits(rng, visitCounts, this.legal, config.temperature);
    } else {
      const maxVisits = this.completedQ(0);
      const scale = (config.cVisit + maxVisits) * config.cScale;
      let best = -1;
      let bestScore = -Infinity;
      let mostVisited = 0;
      for (let a = 0; a < A; a++) if (this.legal[a] && visitCounts[a] > mostVisited) mostVisited = visitCounts[a];
      for (let a = 0; a < A; a++) {
        if (!this.legal[a]) continue;
        normalizedQ[a] = this.scratchQ[a];
        this.scratchScore[a] = this.logits[a] + scale * this.scratchQ[a];
        const score = this.gumbel[a] + this.scratchScore[a];
        if (visitCounts[a] === mostVisited && score > bestScore) {
          bestScore = score;
          best = a;
        }
      }
      softmaxLegal(this.scratchScore, 0, this.legal, 0, A, policyTarget);
      action = best;
    }
    return {
      action,
      visitCounts,
      policyTarget,
      normalizedQ,
      rootValue: this.valueSum[0] / this.visits[0],
      networkValue: this.networkValue[0],
    };
  }

  private addNode(
    reward: number,
    value: number,
    logits: Float32Array | null,
    logitsAt: number,
    legalMask: Uint8Array | null,
    states: Float32Array | null,
    statesAt: number,
    game: SearchGame | undefined,
    terminal: boolean,
  ): number {
    const node = this.count++;
    if (node >= this.capacity) throw new Error(`search tree overflow: more than ${this.capacity} nodes`);
    const { A, D } = this;
    this.reward[node] = reward;
    this.networkValue[node] = value;
    this.terminal[node] = terminal ? 1 : 0;
    this.games[node] = game;
    const base = node * A;
    if (legalMask) this.legal.set(legalMask, base);
    else this.legal.fill(terminal ? 0 : 1, base, base + A);
    if (logits) this.logits.set(logits.subarray(logitsAt, logitsAt + A), base);
    if (states && D > 0) this.states.set(states.subarray(statesAt, statesAt + D), node * D);
    if (!terminal) softmaxLegal(this.logits, base, this.legal, base, A, this.prior.subarray(base, base + A));
    return node;
  }

  /** Q of the edge into `child`: r + γ·V(child). */
  private qOf(child: number): number {
    return this.reward[child] + this.config.discount * (this.valueSum[child] / this.visits[child]);
  }

  /** Min-max normalised Q ∈ [0, 1]; 0 until the tree has seen two different values. */
  private normalize(q: number): number {
    if (!(this.qMax > this.qMin)) return 0;
    return Math.min(1, Math.max(0, (q - this.qMin) / (this.qMax - this.qMin)));
  }

  private selectPuct(node: number): number {
    const { A, config } = this;
    const N = this.visits[node];
    const exploration = (Math.log((N + config.pbCBase + 1) / config.pbCBase) + config.pbCInit) * Math.sqrt(N);
    const base = node * A;
    let best = -1;
    let bestScore = -Infinity;
    for (let a = 0; a < A; a++) {
      if (!this.legal[base + a]) continue;
      const c = this.children[base + a];
      const childVisits = c >= 0 ? this.visits[c] : 0;
      const q = c >= 0 ? this.normalize(this.qOf(c)) : 0;
      const score = q + (exploration * this.prior[base + a]) / (1 + childVisits);
      if (score > bestScore) {
        bestScore = score;
        best = a;
      }
    }
    return best;
  }

  private selectGumbelRoot(sim: number): number {
    const { A, config } = this;
    const maxVisits = this.completedQ(0);
    const scale = (config.cVisit + maxVisits) * config.cScale;
    const level = this.schedule[sim];
    let best = -1;
    let bestScore = -Infinity;
    let fallback = -1;
    let fallbackVisits = Infinity;
    for (let a = 0; a < A; a++) {
      if (!this.legal[a]) continue;
      const c = this.children[a];
      const visits = c >= 0 ? this.visits[c] : 0;
      const score = this.gumbel[a] + this.logits[a] + scale * this.scratchQ[a];
      if (visits === level && score > bestScore) {
        bestScore = score;
        best = a;
      }
      if (visits < fallbackVisits) {
        fallbackVisits = visits;
        fallback = a;
      }
    }
    return best >= 0 ? best : fallback;
  }

  private selectGumbelInterior(node: number): number {
    const { A, config } = this;
    const maxVisits = this.completedQ(node);
    const scale = (config.cVisit + maxVisits) * config.cScale;
    const base = node * A;
    let total = 0;
    for (let a = 0; a < A; a++) {
      this.scratchScore[a] = this.logits[base + a] + scale * this.scratchQ[a];
      const c = this.children[base + a];
      if (c >= 0) total += this.visits[c];
    }
    const improved = this.scratchQ; // reuse: completed Q is no longer needed
    softmaxLegal(this.scratchScore, 0, this.legal, base, A, improved);
    let best = -1;
    let bestScore = -Infinity;
    for (let a = 0; a < A; a++) {
      if (!this.legal[base + a]) continue;
      const c = this.children[base + a];
      const score = improved[a] - (c >= 0 ? this.visits[c] : 0) / (1 + total);
      if (score > bestScore) {
        bestScore = score;
        best = a;
      }
    }
    return best;
  }

  /**
   * Completed, rescaled Q of `node`'s legal actions into scratchQ (∈ [0, 1]); returns max_a N(a).
   * Unvisited actions get v_mix = (v̂ + ΣN · Σ_visited π(a)q(a) / Σ_visited π(a)) / (1 + ΣN).
   */
  private completedQ(node: number): number {
    const { A } = this;
    const base = node * A;
    let totalVisits = 0;
    let maxVisits = 0;
    let weighted = 0;
    let weight = 0;
    for (let a = 0; a < A; a++) {
      const c = this.children[base + a];
      if (c < 0 || !this.legal[base + a]) continue;
      const visits = this.visits[c];
      totalVisits += visits;
      if (visits > maxVisits) maxVisits = visits;
      weighted += this.prior[base + a] * this.qOf(c);
      weight += this.prior[base + a];
    }
    // The root's prior may carry Dirichlet noise only under pUCT, so under Gumbel it is softmax(logits).
    const vMix =
      totalVisits > 0 && weight > 0
        ? (this.networkValue[node] + (totalVisits * weighted) / weight) / (1 + totalVisits)
        : this.networkValue[node];
    let lo = Infinity;
    let hi = -Infinity;
    for (let a = 0; a < A; a++) {
      if (!this.legal[base + a]) {
        this.scratchQ[a] = 0;
        continue;
      }
      const c = this.children[base + a];
      const q = c >= 0 ? this.qOf(c) : vMix;
      this.scratchQ[a] = q;
      if (q < lo) lo = q;
      if (q > hi) hi = q;
    }
    const range = hi - lo;
    for (let a = 0; a < A; a++) this.scratchQ[a] = this.legal[base + a] && range > 1e-12 ? (this.scratchQ[a] - lo) / range : 0;
    return maxVisits;
  }
}

/** out[a] = softmax over legal actions of x[xAt + a] (0 on illegal ones). */
function softmaxLegal(
  x: ArrayLike<number>,
  xAt: number,
  legal: Uint8Array,
  legalAt: number,
  A: number,
  out: Float32Array | Float64Array,
): void {
  let max = -Infinity;
  for (let a = 0; a < A; a++) if (legal[legalAt + a] && x[xAt + a] > max) max = x[xAt + a];
  let sum = 0;
  for (let a = 0; a < A; a++) {
    const e = legal[legalAt + a] ? Math.exp(x[xAt + a] - max) : 0;
    out[a] = e;
    sum += e;
  }
  for (let a = 0; a < A; a++) out[a] = sum > 0 ? out[a] / sum : 0;
}

function argmaxInt(values: Int32Array, legal: Uint8Array, at: number): number {
  let best = -1;
  for (let a = 0; a < values.length; a++) if (legal[at + a] && (best < 0 || values[a] > values[best])) best = a;
  return best;
}

/** Sample a ∝ N(a)^(1/temperature) among legal actions. */
function sampleVisits(rng: Rng, visits: Int32Array, legal: Uint8Array, temperature: number): number {
  const weights = new Float64Array(visits.length);
  let max = 0;
  for (let a = 0; a < visits.length; a++) if (legal[a] && visits[a] > max) max = visits[a];
  let total = 0;
  for (let a = 0; a < visits.length; a++) {
    weights[a] = legal[a] && visits[a] > 0 ? (visits[a] / max) ** (1 / temperature) : 0;
    total += weights[a];
  }
  let u = rng.next() * total;
  let last = -1;
  for (let a = 0; a < visits.length; a++) {
    if (weights[a] <= 0) continue;
    last = a;
    u -= weights[a];
    if (u < 0) return a;
  }
  return last;
}

/** A standard Gumbel sample −log(−log U). */
export function sampleGumbel(rng: Rng): number {
  let u = rng.next();
  while (u === 0) u = rng.next();
  return -Math.log(-Math.log(u));
}

/** Gamma(shape, 1) by Marsaglia and Tsang (2000); shape < 1 by the boost Gamma(k + 1)·U^(1/k). */
export function sampleGamma(rng: Rng, shape: number): number {
  if (shape < 1) {
    let u = rng.next();
    while (u === 0) u = rng.next();
    return sampleGamma(rng, shape + 1) * u ** (1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = rng.normal();
    const v = (1 + c * x) ** 3;
    if (v <= 0) continue;
    const u = rng.next();
    if (u < 1 - 0.0331 * x ** 4) return d * v;
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** A symmetric Dirichlet(α, …, α) sample of dimension n (normalised Gamma draws). */
export function sampleDirichlet(rng: Rng, alpha: number, n: number): Float64Array {
  const out = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    out[i] = sampleGamma(rng, alpha);
    sum += out[i];
  }
  for (let i = 0; i < n; i++) out[i] = sum > 0 ? out[i] / sum : 1 / n;
  return out;
}
