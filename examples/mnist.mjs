#!/usr/bin/env node
// MNIST with ringtrain: the four steps of distributed training.
//   1. partition the data   shardArrays: every rank trains on its own part of the digits
//   2. partition the model  data parallel (default): every rank holds the whole model and
//                           DistributedOptimizer averages the gradients every step;
//                           --pipeline K: PipelineModel cuts the model into K stages, one per rank,
//                           activations flow forward and their gradients back between ranks
//                           (with size = K x d ranks, d pipeline replicas train data-parallel)
//   3. train in parallel    model.fit (or pipe.fit) on every rank, in lock-step
//   4. merge the model      replicas stay identical (BroadcastCallback at start; averageModel at
//                           the end is a no-op for this model but shows the merge step);
//                           a pipeline gathers its stages with pipe.gatherWeights()
//
//   npx ringtrain -np 2 -- node examples/mnist.mjs              (two data-parallel ranks)
//   npx ringtrain -np 2 -- node examples/mnist.mjs --pipeline 2 (one model in two stages)
//   node examples/mnist.mjs                                     (one rank, no launcher)
//
// Options: --epochs N (5)  --batch N per rank or per pipeline replica (32)  --lr X (0.002, scaled by
//          the number of replicas)  --model mlp|cnn (mlp)  --compression none|fp16 (none)
//          --pipeline K (off)  --micro-batches M (8)  --schedule 1f1b|gpipe (1f1b)
//          --out DIR (./models/mnist)  --seed N (1)  --json (rank 0 prints a RESULT line with the summary as JSON)
//          --elastic (train elastically under ringtrain --min-np: see mnist-elastic.mjs; not with --pipeline)
import { createRequire } from 'node:module';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { init } from 'ringtrain';
import {
  BroadcastCallback,
  DistributedOptimizer,
  MetricAverageCallback,
  PipelineModel,
  averageModel,
  predictedBubble,
  shardArrays,
} from 'ringtrain/tfjs';

// --elastic: the same training, elastic (survives lost ranks, takes in new ones): see mnist-elastic.mjs.
//   npx ringtrain -np 4 --min-np 2 -- node examples/mnist.mjs --elastic
if (process.argv.includes('--elastic')) {
  if (process.argv.some((a) => a === '--pipeline' || a.startsWith('--pipeline='))) {
    process.stderr.write('mnist: --elastic and --pipeline cannot be combined: a pipeline stage lives on one rank only, so a lost rank takes it with it\n');
    process.exit(2);
  }
  await import('./mnist-elastic.mjs');
  process.exit();
}

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '5' },
    batch: { type: 'string', default: '32' },
    lr: { type: 'string', default: '0.002' },
    model: { type: 'string', default: 'mlp' },
    compression: { type: 'string', default: 'none' },
    out: { type: 'string', default: './models/mnist' },
    seed: { type: 'string', default: '1' },
    pipeline: { type: 'string', default: '0' },
    'micro-batches': { type: 'string', default: '8' },
    schedule: { type: 'string', default: '1f1b' },
    json: { type: 'boolean', default: false },
  },
});

function fail(message) {
  process.stderr.write(`mnist: ${message}\n`);
  process.exit(2);
}
const epochs = Number(args.epochs);
const batchSize = Number(args.batch);
const baseLr = Number(args.lr);
const seed = Number(args.seed);
if (!Number.isInteger(epochs) || epochs < 1) fail(`--epochs must be a positive integer, got '${args.epochs}'`);
if (!Number.isInteger(batchSize) || batchSize < 1) fail(`--batch must be a positive integer, got '${args.batch}'`);
if (!(baseLr > 0)) fail(`--lr must be a positive number, got '${args.lr}'`);
if (!['mlp', 'cnn'].includes(args.model)) fail(`--model must be mlp or cnn, got '${args.model}'`);
if (!['none', 'fp16'].includes(args.compression)) fail(`--compression must be none or fp16, got '${args.compression}'`);
const stages = Number(args.pipeline);
const microBatches = Number(args['micro-batches']);
if (!Number.isInteger(stages) || stages < 0) fail(`--pipeline must be a number of stages >= 1, got '${args.pipeline}'`);
if (!Number.isInteger(microBatches) || microBatches < 1) fail(`--micro-batches must be a positive integer, got '${args['micro-batches']}'`);
if (!['1f1b', 'gpipe'].includes(args.schedule)) fail(`--schedule must be 1f1b or gpipe, got '${args.schedule}'`);
if (stages > 0 && args.compression !== 'none') fail('--compression applies to data-parallel training only (not with --pipeline)');

// ---- backend: the fastest one installed ----
// tfjs-node-gpu takes every visible GPU in every process: give each rank on a machine its own GPU
// (unless the caller already chose), before the package loads.
if (process.env.CUDA_VISIBLE_DEVICES === undefined && process.env.RINGTRAIN_LOCAL_RANK !== undefined) {
  process.env.CUDA_VISIBLE_DEVICES = process.env.RINGTRAIN_LOCAL_RANK;
}

async function loadTf() {
  for (const [name, label] of [
    ['@tensorflow/tfjs-node-gpu', 'tfjs-node-gpu (CUDA)'],
    ['@tensorflow/tfjs-node', 'tfjs-node (native TensorFlow, CPU)'],
    ['@tensorflow/tfjs', 'pure JavaScript (@tensorflow/tfjs, cpu backend)'],
  ]) {
    try {
      const tf = await import(name);
      return { tf: tf.default ?? tf, label, native: name !== '@tensorflow/tfjs' };
    } catch (e) {
      if (e?.code !== 'ERR_MODULE_NOT_FOUND' && e?.code !== 'MODULE_NOT_FOUND') {
        process.stderr.write(`mnist: ${name} is installed but failed to load (${e.message}); trying the next backend\n`);
      }
    }
  }
  fail('no TensorFlow.js package found: npm install @tensorflow/tfjs (or @tensorflow/tfjs-node / -node-gpu)');
}

const { tf, label: backendLabel, native } = await loadTf();
if (!native) {
  // The pure-JS backend's "install tfjs-node" banner, once per rank, is noise here.
  const warn = console.warn;
  console.warn = (...a) => (String(a[0]).includes('looks like you are running TensorFlow.js in Node.js') ? undefined : warn(...a));
}
await tf.ready();

const comm = await init();
const log = (line) => {
  if (comm.rank === 0) process.stdout.write(`${line}\n`);
};
log(`ringtrain mnist: ${comm.size} rank(s), backend ${backendLabel} (${tf.getBackend()})`);

// ---- data: the 10,000 digits of the `mnist` package; 15% of each class, drawn with a seeded
// shuffle (the same on every rank), is held out for testing ----
function seededRandom(s) {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function loadDigits() {
  const require = createRequire(import.meta.url);
  const mnist = require('mnist');
  const PIXELS = 784;
  const random = seededRandom(seed);
  const train = [];
  const test = [];
  for (let digit = 0; digit < 10; digit++) {
    const { raw, length } = mnist[digit];
    const order = Array.from({ length }, (_, i) => i);
    for (let i = length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const testCount = Math.round(length * 0.15);
    order.forEach((sample, k) => (k < testCount ? test : train).push([raw.slice(sample * PIXELS, (sample + 1) * PIXELS), digit]));
  }
  const toTensors = (rows) => {
    const xs = new Float32Array(rows.length * PIXELS);
    const ys = new Float32Array(rows.length * 10);
    rows.forEach(([pixels, digit], r) => {
      xs.set(pixels, r * PIXELS);
      ys[r * 10 + digit] = 1;
    });
    return { xs: tf.tensor2d(xs, [rows.length, PIXELS]), ys: tf.tensor2d(ys, [rows.length, 10]) };
  };
  return { train: toTensors(train), test: toTensors(test) };
}

const { train, test } = loadDigits();
if (stages > 0) {
  // --pipeline: its own function below (steps 1-4 for a model cut into stages).
  await trainPipeline();
  tf.dispose([train.xs, train.ys, test.xs, test.ys]);
  await comm.close();
  process.exit(0);
}
// Step 1: this rank's part. The seed deals a shuffled, class-mixed split; model.fit reshuffles
// within the shard every epoch.
const mine = shardArrays({ xs: train.xs, ys: train.ys }, { comm, seed });
const localSamples = mine.xs.shape[0];
log(`data: ${train.xs.shape[0]} training digits (${localSamples} per rank), ${test.xs.shape[0]} held out for testing`);

// ---- model ----
/** The model's layers, not yet built (a pipeline stage builds only its own). */
function buildLayers() {
  if (args.model === 'cnn') {
    return [
      tf.layers.reshape({ inputShape: [784], targetShape: [28, 28, 1] }),
      tf.layers.conv2d({ filters: 8, kernelSize: 5, activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 16, kernelSize: 5, activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10, activation: 'softmax' }),
    ];
  }
  return [tf.layers.dense({ inputShape: [784], units: 64, activation: 'relu' }), tf.layers.dense({ units: 10, activation: 'softmax' })];
}

function buildModel() {
  return tf.sequential({ layers: buildLayers() });
}

const model = buildModel();
// Step 2: the global batch is size x batch, so the learning rate is scaled with the number of ranks.
const optimizer = new DistributedOptimizer(tf.train.adam(baseLr * comm.size), { comm, compression: args.compression });
model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
log(`model: ${args.model}, ${model.countParams()} parameters; global batch ${batchSize * comm.size}; gradients ${args.compression === 'fp16' ? 'as float16' : 'as float32'}`);

// ---- step 3: train ----
const started = performance.now();
let epochStarted = started;
await model.fit(mine.xs, mine.ys, {
  epochs,
  batchSize,
  shuffle: true,
  verbose: 0,
  callbacks: [
    // Random initialisation differs per rank: everyone starts from rank 0's weights.
    new BroadcastCallback({ root: 0, comm, model }),
    // Loss and accuracy averaged over all ranks' shards before rank 0 prints them.
    new MetricAverageCallback({ comm }),
    {
      onEpochEnd: async (epoch, logs) => {
        const now = performance.now();
        const secs = (now - epochStarted) / 1000;
        epochStarted = now;
        log(
          `epoch ${epoch + 1}/${epochs}: loss ${logs.loss.toFixed(4)}, accuracy ${(logs.acc * 100).toFixed(2)}% ` +
            `(${secs.toFixed(1)} s, ${Math.round((localSamples * comm.size) / secs)} samples/s)`,
        );
      },
    },
  ],
});
const trainSeconds = (performance.now() - started) / 1000;

// ---- step 4: merge. The replicas are already identical (same averaged gradients from the same
// start); averageModel matters for state that is not all-reduced, e.g. BatchNorm statistics. ----
await averageModel(model, { comm });

// ---- evaluate on the held-out digits ----
const [lossTensor, accTensor] = model.evaluate(test.xs, test.ys, { batchSize: 500 });
const accuracy = (await accTensor.data())[0];
const stats = optimizer.stats;
const samplesPerSec = (localSamples * comm.size * epochs) / trainSeconds;

// ---- save (rank 0): model.json + weights.bin in --out ----
async function save(model) {
  const dir = path.resolve(args.out);
  await mkdir(dir, { recursive: true });
  if (native) {
    await model.save(`file://${dir}`);
    return dir;
  }
  // The pure-JS package has no file:// handler: write the same two files ourselves.
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData = Array.isArray(artifacts.weightData)
        ? tf.io.concatenateArrayBuffers(artifacts.weightData)
        : artifacts.weightData;
      const json = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        trainingConfig: artifacts.trainingConfig,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
      };
      await writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
      await writeFile(path.join(dir, 'weights.bin'), Buffer.from(weightData));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weightData.byteLength } };
    }),
    { includeOptimizer: false },
  );
  return dir;
}
const savedTo = comm.rank === 0 ? await save(model) : undefined;

log(`test accuracy: ${(accuracy * 100).toFixed(2)}% on ${test.xs.shape[0]} held-out digits`);
log(
  `summary: ${trainSeconds.toFixed(1)} s training, ${Math.round(samplesPerSec)} samples/s over ${comm.size} rank(s), ` +
    `${(stats.allreduceMs / 1000).toFixed(2)} s in all-reduce (${((stats.allreduceMs / 1000 / trainSeconds) * 100).toFixed(1)}%, ` +
    `${stats.steps} steps, ${(stats.bytes / stats.steps / 1024).toFixed(0)} KiB a step)`,
);
if (savedTo) log(`model saved to ${savedTo} (model.json + weights.bin)`);
if (args.json && comm.rank === 0) {
  process.stdout.write(
    `RESULT ${JSON.stringify({
      size: comm.size,
      backend: tf.getBackend(),
      accuracy,
      trainSeconds,
      samplesPerSec,
      allreduceMs: stats.allreduceMs,
      steps: stats.steps,
      bytes: stats.bytes,
      compression: args.compression,
      savedTo,
    })}\n`,
  );
}
tf.dispose([lossTensor, accTensor, train.xs, train.ys, test.xs, test.ys, mine.xs, mine.ys]);
await comm.close();

// ---- --pipeline K: the model cut into K stages (size = K x d ranks: d pipeline replicas) ----
async function trainPipeline() {
  if (comm.size % stages !== 0) fail(`--pipeline ${stages} needs a multiple of ${stages} ranks, got ${comm.size}`);
  const replicas = comm.size / stages;
  // Every rank passes all the digits: stage 0 reads the inputs, the last stage the labels, and the
  // pipeline deals each batch's rows to the replicas. A builder, so each rank builds only its stage.
  const pipe = new PipelineModel(buildLayers, { comm, stages, microBatches, schedule: args.schedule, seed });
  pipe.compile({ optimizer: tf.train.adam(baseLr * replicas), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const globalBatch = batchSize * replicas;
  const bubble = predictedBubble(stages, microBatches);
  log(`data: ${train.xs.shape[0]} training digits, ${test.xs.shape[0]} held out for testing`);
  log(
    `pipeline: ${stages} stages x ${replicas} replica(s), ${microBatches} micro-batches of ${batchSize / microBatches} (${args.schedule}), ` +
      `global batch ${globalBatch}; predicted bubble ${(bubble * 100).toFixed(1)}%`,
  );
  pipe.stageParams.forEach((p, s) => log(`  stage ${s}: layers ${pipe.ranges[s].join('..')}, ${p} parameters (${p * 4} bytes per rank)`));

  const started = performance.now();
  let epochStarted = started;
  await pipe.fit(train.xs, train.ys, {
    epochs,
    batchSize: globalBatch,
    shuffle: true,
    callbacks: {
      onEpochEnd: async (epoch, logs) => {
        const now = performance.now();
        const secs = (now - epochStarted) / 1000;
        epochStarted = now;
        log(
          `epoch ${epoch + 1}/${epochs}: loss ${logs.loss.toFixed(4)}, accuracy ${(logs.acc * 100).toFixed(2)}% ` +
            `(${secs.toFixed(1)} s, ${Math.round(train.xs.shape[0] / secs)} samples/s)`,
        );
      },
    },
  });
  const trainSeconds = (performance.now() - started) / 1000;
  const evaluated = await pipe.evaluate(test.xs, test.ys, { batchSize: 500 });
  const accuracy = evaluated[1].dataSync()[0];
  tf.dispose(evaluated);

  // Every rank's idle share of its schedule time: the measured bubble (stage by stage).
  const share = new Float64Array(comm.size * 3);
  share.set([pipe.stats.scheduleMs, pipe.stats.computeMs, pipe.weightBytes], comm.rank * 3);
  await comm.allreduce(share, { op: 'sum' });
  const perRank = Array.from({ length: comm.size }, (_, r) => ({
    rank: r,
    stage: r % stages,
    idle: 1 - share[r * 3 + 1] / share[r * 3],
    weightBytes: share[r * 3 + 2],
  }));

  // Step 4: the whole model on every rank; rank 0 saves it.
  const weights = await pipe.gatherWeights();
  let savedTo;
  if (comm.rank === 0) {
    const whole = buildModel();
    whole.setWeights(weights);
    savedTo = await save(whole);
    whole.dispose();
  }
  tf.dispose(weights);
  const samplesPerSec = (train.xs.shape[0] * epochs) / trainSeconds;
  log(`test accuracy: ${(accuracy * 100).toFixed(2)}% on ${test.xs.shape[0]} held-out digits`);
  log(`summary: ${trainSeconds.toFixed(1)} s training, ${Math.round(samplesPerSec)} samples/s over ${comm.size} rank(s), ${pipe.stats.steps} steps`);
  for (const r of perRank) log(`  rank ${r.rank} (stage ${r.stage}): idle ${(r.idle * 100).toFixed(1)}% of its schedule time, ${r.weightBytes} bytes of weights`);
  if (savedTo) log(`model saved to ${savedTo} (model.json + weights.bin)`);
  if (args.json && comm.rank === 0) {
    process.stdout.write(
      `RESULT ${JSON.stringify({
        size: comm.size,
        backend: tf.getBackend(),
        stages,
        replicas,
        microBatches,
        schedule: args.schedule,
        accuracy,
        trainSeconds,
        samplesPerSec,
        steps: pipe.stats.steps,
        predictedBubble: bubble,
        perRank,
        stageParams: pipe.stageParams,
        savedTo,
      })}\n`,
    );
  }
  await pipe.dispose();
}
