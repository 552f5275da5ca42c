#!/usr/bin/env node
// Cost of DistributedOptimizer's all-reduce hook for a model of ~100 variables (~25 MB of float32
// gradients), against one raw all-reduce of the same bytes and against a naive hook that makes one
// blocking all-reduce call per tensor.
//
//   node dist/cli.js -np 2 -- node scripts/bench-tfjs.mjs [--steps 10] [--variables 100] [--mb 25]
//
// The hook is timed through DistributedOptimizer.applyGradients with an inner optimizer that does
// nothing, so the numbers are gather (copy/download, fp16 narrowing) + all-reduce + scatter
// (fp16 widening, rebuilding tensors). Variants run round-robin, so load from elsewhere on the
// machine hits them alike; rank 0 prints a table of per-step medians (the slowest rank's).
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { init } from 'ringtrain';
import { DistributedOptimizer } from 'ringtrain/tfjs';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    variables: { type: 'string', default: '100' },
    mb: { type: 'string', default: '25' },
    json: { type: 'boolean', default: false },
  },
});
const STEPS = Number(args.steps);
const WARMUP = Number(args.warmup);
const VARIABLES = Number(args.variables);
const MB = Number(args.mb);
for (const [k, v] of [['steps', STEPS], ['warmup', WARMUP], ['variables', VARIABLES], ['mb', MB]]) {
  if (!Number.isFinite(v) || v < (k === 'warmup' ? 0 : 1) || (k !== 'mb' && !Number.isInteger(v))) {
    process.stderr.write(`bench-tfjs: --${k} must be a positive ${k === 'mb' ? 'number' : 'integer'}\n`);
    process.exit(2);
  }
}

const warn = console.warn;
console.warn = (...a) => (String(a[0]).includes('looks like you are running TensorFlow.js in Node.js') ? undefined : warn(...a));
await tf.setBackend(process.env.TFJS_BACKEND ?? 'cpu');
const comm = await init();

// Half the variables are kernels [256, w], half are biases [w]; w is chosen so the total is ~MB.
const pairs = Math.ceil(VARIABLES / 2);
const width = Math.max(1, Math.round((MB * 1e6) / 4 / pairs / 257));
const shapes = [];
for (let i = 0; i < pairs; i++) shapes.push([256, width], [width]);
shapes.length = VARIABLES;
const gradients = shapes.map((shape, i) => ({ name: `bench/v${i}`, tensor: tf.randomNormal(shape, 0, 1, 'float32', 17 + i) }));
const elements = gradients.reduce((n, g) => n + g.tensor.size, 0);

/** An optimizer that applies nothing: the wrapper's applyGradients time is then the hook alone. */
class NoopOptimizer extends tf.Optimizer {
  static get className() {
    return 'Noop';
  }
  applyGradients() {}
  getConfig() {
    return {};
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Runs every variant once per round, round after round, so that load from elsewhere on the
 * machine hits all variants alike; reports each variant's median (the slowest rank's).
 */
async function measureAll(variants) {
  const times = variants.map(() => []);
  for (let round = 0; round < WARMUP + STEPS; round++) {
    for (let v = 0; v < variants.length; v++) {
      await comm.barrier();
      const t0 = performance.now();
      variants[v].step();
      const dt = performance.now() - t0;
      if (round >= WARMUP) times[v].push(dt);
    }
  }
  const medians = await comm.allreduce(Float64Array.from(times.map(median)), { op: 'max' });
  return variants.map((v, i) => ({ ...v, ms: medians[i] }));
}

const flat = new Float32Array(elements);
const half = new Uint16Array(elements).fill(0x3c00);
const variants = [
  { name: 'raw allreduceSync, one float32 buffer', calls: 1, step: () => comm.allreduceSync(flat, { op: 'avg' }) },
];
// The same bytes as 1 MiB collectives (all but the last asynchronous): the cost of chunking alone.
const CHUNK = (1 << 20) / 4;
variants.push({
  name: 'raw, same buffer as 1 MiB collectives',
  calls: Math.ceil(elements / CHUNK),
  step: () => {
    for (let a = 0; a < elements; a += CHUNK) {
      const view = flat.subarray(a, Math.min(elements, a + CHUNK));
      if (a + CHUNK >= elements) comm.allreduceSync(view, { op: 'avg' });
      else comm.allreduce(view, { op: 'avg' }).catch(() => undefined);
    }
  },
});
const hooks = [
  ['fused hook, default (64 MiB buckets, 1 MiB pipeline chunks)', {}],
  ['fused hook, 4 MiB pipeline chunks', { pipelineBytes: 4 << 20 }],
  ['fused hook, not pipelined (one 25 MB collective)', { pipelineBytes: 0 }],
  ['fused hook, fp16 compression (default chunks)', { compression: 'fp16' }],
].map(([name, options]) => ({ name, opt: new DistributedOptimizer(new NoopOptimizer(), { comm, op: 'avg', ...options }) }));
for (const h of hooks) variants.push({ name: h.name, hook: h.opt, step: () => h.opt.applyGradients(gradients) });
variants.push({ name: 'raw allreduceSync, one float16 buffer (no conversion)', calls: 1, step: () => comm.allreduceSync(half, { op: 'avg', dtype: 'float16' }) });
// Naive: one download, one blocking all-reduce and one upload per tensor.
variants.push({
  name: 'naive hook, one call per tensor',
  calls: gradients.length,
  step: () => {
    const out = gradients.map((g) => {
      const data = g.tensor.dataSync().slice();
      comm.allreduceSync(data, { op: 'avg' });
      return tf.tensor(data, g.tensor.shape);
    });
    tf.dispose(out);
  },
});

const before = tf.memory().numTensors;
const measured = await measureAll(variants);
if (tf.memory().numTensors !== before) throw new Error(`bench-tfjs: leaked ${tf.memory().numTensors - before} tensors`);
const raw = measured[0].ms;
const rows = measured.map((m) => {
  const st = m.hook?.stats;
  return st
    ? { name: m.name, ms: m.ms, calls: st.collectives / st.steps, gather: st.gatherMs / st.steps, scatter: st.scatterMs / st.steps }
    : { name: m.name, ms: m.ms, calls: m.calls };
});

if (comm.rank === 0) {
  const mb = (elements * 4) / 1e6;
  const lines = [
    `ringtrain tfjs hook benchmark: ${comm.size} ranks, ${gradients.length} variables, ${elements} float32 (${mb.toFixed(1)} MB), backend ${tf.getBackend()}, median of ${STEPS} steps`,
    '',
    '| variant | ms / step | × raw | collective calls / step | gather ms | scatter ms |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.ms.toFixed(1)} | ${(r.ms / raw).toFixed(2)} | ${r.calls} | ${r.gather === undefined ? '' : r.gather.toFixed(1)} | ${r.scatter === undefined ? '' : r.scatter.toFixed(1)} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (args.json) process.stdout.write(`RESULT ${JSON.stringify({ size: comm.size, elements, rows })}\n`);
}
tf.dispose(gradients.map((g) => g.tensor));
await comm.close();
