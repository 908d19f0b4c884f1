/**
 * Throughput of the engine's matmul (models/engine/kernels/matmul.ts) on the device Dawn opens: a 4096³
 * square product and the learner's real shapes, N = 4096 tokens at d = 1024 (ffn 2736) and d = 512
 * (ffn 1368), for the forward product and both backward products of every linear layer:
 *
 *   forward   Y  = X·W      NN   m = N,   n = out, k = in
 *   backward  dX = dY·Wᵀ    NT   m = N,   n = in,  k = out
 *             dW = Xᵀ·dY    TN   m = in,  n = out, k = N
 *
 * Each (shape, path) is first checked against float64 dot products at 64 sampled entries of C (the
 * error over the tests' bound, ≤ 1 passes), then timed as `--reps` dispatches recorded into one step
 * and submitted once, synchronised by awaiting the read-back of a 1-element tensor; the best of
 * `--trials` is reported. TFLOP/s = 2·m·n·k / time. Paths the device lacks are skipped with the reason.
 *
 *   npx tsx bench/engine-matmul.ts [--paths f32,f16,f16-matrix] [--shapes learner|small|MxNxK[:NN|NT|TN|TT],…]
 *                                  [--tiles auto|large|small|all] [--reps 20] [--trials 3]
 * `--shapes small` (256³ in three layouts and a ragged 130×67×129) runs in seconds on lavapipe.
 */
import { parseArgs } from 'node:util';
import { describeCapabilities, openEngineDevice } from '../models/engine/device.js';
import { matmul, pickMatmulPath, type MatmulPath, type MatmulTile } from '../models/engine/kernels/matmul.js';
import { Arena, Runtime } from '../models/engine/runtime.js';

interface Shape {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly transA: boolean;
  readonly transB: boolean;
  readonly role: string;
}

const { values } = parseArgs({
  options: {
    paths: { type: 'string', default: 'f32,f16,f16-matrix' },
    shapes: { type: 'string', default: 'learner' },
    tiles: { type: 'string', default: 'auto' },
    reps: { type: 'string', default: '20' },
    trials: { type: 'string', default: '3' },
  },
});

const TOKENS = 4096;

/** Forward and backward products of q/k/v/o, gate/up and down at model width d. */
function learnerShapes(d: number): Shape[] {
  const ffn = Math.ceil(Math.ceil((8 * d) / 3) / 8) * 8; // models/transformer.ts's default ffnHidden
  const shapes: Shape[] = [];
  for (const [name, inF, outF] of [
    ['q/k/v/o', d, d],
    ['gate/up', d, ffn],
    ['down', ffn, d],
  ] as const) {
    shapes.push({ m: TOKENS, n: outF, k: inF, transA: false, transB: false, role: `d=${d} ${name} Y=X·W` });
    shapes.push({ m: TOKENS, n: inF, k: outF, transA: false, transB: true, role: `d=${d} ${name} dX=dY·Wᵀ` });
    shapes.push({ m: inF, n: outF, k: TOKENS, transA: true, transB: false, role: `d=${d} ${name} dW=Xᵀ·dY` });
  }
  return shapes;
}

function parseShapes(spec: string): Shape[] {
  if (spec === 'learner')
    return [{ m: 4096, n: 4096, k: 4096, transA: false, transB: false, role: 'square' }, ...learnerShapes(1024), ...learnerShapes(512)];
  if (spec === 'small') {
    return [
      { m: 256, n: 256, k: 256, transA: false, transB: false, role: 'small' },
      { m: 256, n: 256, k: 256, transA: false, transB: true, role: 'small' },
      { m: 256, n: 256, k: 256, transA: true, transB: false, role: 'small' },
      { m: 130, n: 67, k: 129, transA: false, transB: false, role: 'ragged' },
    ];
  }
  return spec.split(',').map((item) => {
    const match = /^(\d+)x(\d+)x(\d+)(?::(NN|NT|TN|TT))?$/i.exec(item.trim());
    if (!match) throw new Error(`--shapes: '${item}' is not MxNxK[:NN|NT|TN|TT] (or 'learner', 'small')`);
    const layout = (match[4] ?? 'NN').toUpperCase();
    return {
      m: Number(match[1]),
      n: Number(match[2]),
      k: Number(match[3]),
      transA: layout[0] === 'T',
      transB: layout[1] === 'T',
      role: 'custom',
    };
  });
}

/** Deterministic uniform numbers in [−1, 1) (xorshift32). */
function fill(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s >>> 8) / 2 ** 23 - 1;
  }
  return out;
}

/**
 * Largest error/bound over 64 sampled entries of C = op(A)·op(B), against float64 dot products. Bounds
 * as in test/unit/engine/matmul.test.ts: f32 1e-4·(|ref| + 0.1·rms); f16 paths
 * (2⁻⁹ + 2⁻²⁰ + (k+2)·2⁻²³)·Σ|a||b| + 2⁻²²|ref|.
 */
function sampledError(shape: Shape, path: MatmulPath, a: Float32Array, b: Float32Array, c: Float32Array): number {
  const { m, n, k, transA, transB } = shape;
  const picks: [number, number, number, number][] = [];
  let sumSq = 0;
  for (let s = 0; s < 64; s++) {
    const i = (s * 7919 + 13) % m;
    const j = (s * 104729 + 7) % n;
    let ref = 0;
    let abs = 0;
    for (let p = 0; p < k; p++) {
      const prod = (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
      ref += prod;
      abs += Math.abs(prod);
    }
    picks.push([i, j, ref, abs]);
    sumSq += ref * ref;
  }
  const rms = Math.sqrt(sumSq / picks.length);
  let worst = 0;
  for (const [i, j, ref, abs] of picks) {
    const bound =
      path === 'f32'
        ? 1e-4 * (Math.abs(ref) + 0.1 * rms)
        : (2 ** -9 + 2 ** -20 + (k + 2) * 2 ** -23) * abs + 2 ** -22 * Math.abs(ref) + 1e-30;
    const r = Math.abs(c[i * n + j] - ref) / bound;
    worst = Number.isNaN(r) ? Number.POSITIVE_INFINITY : Math.max(worst, r);
  }
  return worst;
}

async function main(): Promise<void> {
  const engine = await openEngineDevice();
  const rt = new Runtime(engine);
  const caps = engine.caps;
  const shapes = parseShapes(values.shapes!);
  const reps = Number(values.reps);
  const trials = Number(values.trials);
  const tiles: MatmulTile[] = values.tiles === 'all' ? ['large', 'small'] : [values.tiles as MatmulTile];
  const paths: MatmulPath[] = [];
  for (const p of values.paths!.split(',').map((s) => s.trim()) as MatmulPath[]) {
    const picked = pickMatmulPath(caps, p);
    if (picked.path !== p) console.log(`skipping ${p}: ${picked.reason}`);
    else paths.push(p);
  }
  console.log(`# engine matmul — ${describeCapabilities(caps, pickMatmulPath(caps, 'auto').reason)}`);
  console.log(`${reps} dispatches per step, best of ${trials} steps; check = worst error/bound at 64 sampled entries (≤ 1 passes)\n`);

  const elements = (s: Shape) => [s.m * s.k, s.k * s.n, s.m * s.n];
  const largest = shapes.reduce((acc, s) => elements(s).map((e, i) => Math.max(e, acc[i])), [0, 0, 0]);
  const arena = new Arena(
    engine,
    'bench-matmul',
    largest.reduce((s, e) => s + Arena.footprint(engine, e, 'f32'), 0),
  );
  const syncArena = new Arena(engine, 'bench-matmul-sync', 256);
  const sync = syncArena.alloc('sync', [1]);
  const rows: string[][] = [];
  for (const shape of shapes) {
    const [na, nb, nc] = elements(shape);
    arena.reset();
    const a = arena.alloc('a', [na]);
    const b = arena.alloc('b', [nb]);
    const c = arena.alloc('c', [nc]);
    const ha = fill(na, 1 + shape.m);
    const hb = fill(nb, 2 + shape.n);
    rt.write(a, ha);
    rt.write(b, hb);
    for (const path of paths) {
      for (const tile of tiles) {
        const args = { a, b, c, m: shape.m, n: shape.n, k: shape.k, transA: shape.transA, transB: shape.transB, path, tile };
        const first = rt.record('check');
        await matmul(rt, first, args);
        const out = first.readLater(c);
        first.submit();
        const check = sampledError(shape, path, ha, hb, (await out) as Float32Array);
        let best = Number.POSITIVE_INFINITY;
        for (let trial = 0; trial < trials; trial++) {
          const rec = rt.record('bench');
          for (let r = 0; r < reps; r++) await matmul(rt, rec, args);
          rec.copy(c, sync, 4);
          const done = rec.readLater(sync);
          const t0 = performance.now();
          rec.submit();
          await done;
          best = Math.min(best, (performance.now() - t0) / reps);
        }
        const tflops = (2 * shape.m * shape.n * shape.k) / (best / 1e3) / 1e12;
        const layout = `${shape.transA ? 'T' : 'N'}${shape.transB ? 'T' : 'N'}`;
        rows.push([
          `${shape.m}×${shape.n}×${shape.k}`,
          layout,
          shape.role,
          path,
          tile,
          best.toFixed(3),
          tflops >= 1 ? tflops.toFixed(2) : tflops.toPrecision(2),
          check.toFixed(3),
        ]);
        console.error(rows[rows.length - 1].join('  '));
      }
    }
  }
  const header = ['shape m×n×k', 'layout', 'role', 'path', 'tile', 'ms', 'TFLOP/s', 'check'];
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map(() => '---').join('|')}|`);
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
  for (const x of [arena, syncArena]) {
    rt.forgetBuffer(x.id);
    x.destroy();
  }
}

await main();
process.exit(0);
