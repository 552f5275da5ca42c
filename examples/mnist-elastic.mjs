#!/usr/bin/env node
// Elastic data-parallel MNIST: training goes on when ranks die, and takes in ranks that join.
//
//   npx ringtrain -np 4 --min-np 2 -- node examples/mnist-elastic.mjs
//   npx ringtrain -np 4 --min-np 2 -- node examples/mnist.mjs --elastic     (the same)
//
// Kill a rank (kill -9 <pid>) while it trains: the others re-form a world of 3, go back to the
// last commit (at most --commit-every steps back), and go on with a global batch of 3 x batch.
//
// What makes it elastic:
//   - ElasticState holds what must survive: the model (weights + optimizer state) and the loop
//     position (epoch, sample). commit() snapshots it in memory every --commit-every steps.
//   - runElastic(state, train) runs train(); when a peer is lost it re-forms the world, restores
//     the newest commit every survivor has, broadcasts it, and calls train() again.
//   - train() takes its rank, world size and data shard from the current world every time it
//     starts, and the position from the state, so it resumes where the commit was taken.
//   - DistributedOptimizer built without { comm } reduces over the current world on every step.
//
// Options: --epochs N (3)  --batch N per rank (32)  --lr X (0.002, scaled by the world size)
//          --commit-every N steps (10)  --seed N (1)  --json (machine-readable lines, for tests)
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { init } from 'ringtrain';
import { DistributedOptimizer, ElasticState, runElastic } from 'ringtrain/tfjs';

const { values: args } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--elastic'),
  options: {
    epochs: { type: 'string', default: '3' },
    batch: { type: 'string', default: '32' },
    lr: { type: 'string', default: '0.002' },
    'commit-every': { type: 'string', default: '10' },
    seed: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const epochs = Number(args.epochs);
const batchSize = Number(args.batch);
const baseLr = Number(args.lr);
const commitEvery = Number(args['commit-every']);
const seed = Number(args.seed);
for (const [name, v] of [['epochs', epochs], ['batch', batchSize], ['commit-every', commitEvery]]) {
  if (!Number.isInteger(v) || v < 1) {
    process.stderr.write(`mnist-elastic: --${name} must be a positive integer\n`);
    process.exit(2);
  }
}

// A rank keeps its local rank in every world, so its GPU stays the same.
if (process.env.CUDA_VISIBLE_DEVICES === undefined && process.env.RINGTRAIN_LOCAL_RANK !== undefined) {
  process.env.CUDA_VISIBLE_DEVICES = process.env.RINGTRAIN_LOCAL_RANK;
}
let tf;
for (const name of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs']) {
  try {
    const m = await import(name);
    tf = m.default ?? m;
    break;
  } catch (e) {
    if (e?.code !== 'ERR_MODULE_NOT_FOUND' && e?.code !== 'MODULE_NOT_FOUND') throw e;
  }
}
if (!tf) {
  process.stderr.write('mnist-elastic: no TensorFlow.js package found: npm install @tensorflow/tfjs\n');
  process.exit(2);
}
const warn = console.warn;
console.warn = (...a) => (String(a[0]).includes('looks like you are running TensorFlow.js in Node.js') ? undefined : warn(...a));
await tf.ready();

const worker = process.env.RINGTRAIN_ELASTIC_ID ?? '0';
const emit = (kind, value) => args.json && process.stdout.write(`${kind} ${JSON.stringify({ worker: Number(worker), ...value })}\n`);
emit('READY', { pid: process.pid });
await init();

function seededRandom(s) {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function permutation(n, s) {
  const random = seededRandom(s);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

// The digits of the `mnist` package: 15% of each class held out for testing, the same on every rank.
function loadDigits() {
  const mnist = createRequire(import.meta.url)('mnist');
  const PIXELS = 784;
  const rows = { train: [], test: [] };
  for (let digit = 0; digit < 10; digit++) {
    const { raw, length } = mnist[digit];
    const order = permutation(length, seed * 10 + digit);
    const testCount = Math.round(length * 0.15);
    order.forEach((sample, k) => rows[k < testCount ? 'test' : 'train'].push([raw.slice(sample * PIXELS, (sample + 1) * PIXELS), digit]));
  }
  const toTensors = (list) => {
    const xs = new Float32Array(list.length * PIXELS);
    const ys = new Float32Array(list.length * 10);
    list.forEach(([pixels, digit], r) => {
      xs.set(pixels, r * PIXELS);
      ys[r * 10 + digit] = 1;
    });
    return { xs: tf.tensor2d(xs, [list.length, PIXELS]), ys: tf.tensor2d(ys, [list.length, 10]), n: list.length };
  };
  return { train: toTensors(rows.train), test: toTensors(rows.test) };
}
const { train, test } = loadDigits();

// Seeded initial weights: runs with the same settings start from the same model.
const model = tf.sequential();
model.add(tf.layers.dense({ inputShape: [784], units: 64, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed }) }));
model.add(tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }));
const adam = tf.train.adam(baseLr);
// No { comm }: every step reduces over the current world.
// No compiled metrics: tfjs-layers keeps a step's metric tensors before the gradients are applied,
// so a step that fails (a peer lost) would leak them.
model.compile({ optimizer: new DistributedOptimizer(adam), loss: 'categoricalCrossentropy' });

// What survives a reset: weights, Adam's state, and where the loop is.
const state = new ElasticState({ model, epoch: 0, sample: 0, step: 0 });
const log = (line) => state.rank === 0 && !args.json && process.stdout.write(`${line}\n`);
let furthestStep = 0;
let resumed = false;
state.onReset((s) => {
  // The global batch is size x batch: keep the learning rate in proportion.
  adam.learningRate = baseLr * s.size;
  resumed = true;
});
adam.learningRate = baseLr * state.size;

try {
  await runElastic(
    state,
    async (s) => {
      const { rank, size } = s;
      log(`training on ${size} rank(s) from epoch ${s.epoch + 1}, step ${s.step}`);
      for (; s.epoch < epochs; s.epoch++, s.sample = 0) {
        // One seeded order per epoch over all digits; each step takes the next size x batch of them.
        const order = permutation(train.n, seed * 1000 + s.epoch);
        for (; s.sample + size * batchSize <= train.n; s.sample += size * batchSize) {
          const mine = tf.tensor1d(order.slice(s.sample + rank * batchSize, s.sample + (rank + 1) * batchSize), 'int32');
          const xs = tf.gather(train.xs, mine);
          const ys = tf.gather(train.ys, mine);
          try {
            await model.trainOnBatch(xs, ys);
          } finally {
            tf.dispose([mine, xs, ys]);
          }
          s.step++;
          furthestStep = Math.max(furthestStep, s.step);
          emit('STEP', { step: s.step, rank, size });
          if (resumed) {
            resumed = false;
            emit('RESUMED', { t: Date.now(), step: s.step, size });
          }
          if (s.step % commitEvery === 0) await s.commit();
        }
        log(`epoch ${s.epoch + 1}/${epochs} done (step ${s.step}, ${size} rank(s))`);
      }
    },
    {
      onEvent: (e) => {
        emit('RESET', { t: Date.now(), rank: e.rank, size: e.size, recoveryMs: e.recoveryMs, commitId: e.commitId, redone: furthestStep - state.step, reason: e.reason });
        if (!args.json && e.rank === 0) process.stdout.write(`world re-formed: ${e.size} rank(s), back to commit ${e.commitId} (step ${state.step}) in ${e.recoveryMs} ms: ${e.reason}\n`);
      },
    },
  );
} catch (e) {
  // The launcher stopped the job (below --min-np): it has said why; say it once here too.
  if (e?.code !== 'ERR_RINGTRAIN_ELASTIC') throw e;
  process.stderr.write(`mnist-elastic: ${e.message}\n`);
  process.exit(1);
}

const accTensor = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(model.predict(test.xs), -1), tf.argMax(test.ys, -1)), 'float32')));
const accuracy = (await accTensor.data())[0];
accTensor.dispose();
const hash = createHash('sha256');
for (const w of model.weights) hash.update(Buffer.from((await w.read().data()).buffer));
emit('RESULT', { rank: state.rank, size: state.size, accuracy, steps: state.step, weights: hash.digest('hex').slice(0, 16), tensors: tf.memory().numTensors });
log(`test accuracy: ${(accuracy * 100).toFixed(2)}% after ${state.step} steps; final world: ${state.size} rank(s)`);
state.dispose();
