// PipelineModel's argument errors, in this process on a world of one: models that cannot be
// split as asked, batches not divisible by micro-batches, bad options. (Errors that need several
// ranks, such as ranks building different models, are in test/tfjs-pipeline.test.ts.)
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { init, type Communicator } from '../../dist/index.js';
import { DistributedOptimizer, PipelineModel } from '../../dist/tfjs/index.js';

let comm: Communicator;
beforeAll(async () => {
  await tf.setBackend('cpu');
  comm = await init({ env: {} });
});
afterAll(async () => {
  await comm.close();
});

const mlp = (): tf.Sequential =>
  tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3 }), tf.layers.dense({ units: 2 })] });

describe('PipelineModel argument errors', () => {
  it('refuses a split the model cannot take', () => {
    expect(() => new PipelineModel(mlp(), { comm, stages: 1, splitAt: [1] })).toThrow(/splitAt must list 0 layer indexes/);
    const code = (() => {
      try {
        new PipelineModel(mlp(), { comm, stages: 1, splitAt: [1] });
      } catch (e) {
        return (e as { code?: string }).code;
      }
    })();
    expect(code).toBe('ERR_RINGTRAIN_ARGUMENT');
    expect(() => new PipelineModel(mlp(), { comm, stages: 0 })).toThrow(/stages must be an integer >= 1/);
    expect(() => new PipelineModel(mlp(), { comm, stages: 2 })).toThrow(/comm.size 1 is not a multiple of stages 2/);
    expect(() => new PipelineModel(mlp(), { comm, stages: 1, microBatches: 0 })).toThrow(/microBatches must be an integer >= 1/);
    expect(() => new PipelineModel(mlp(), { comm, stages: 1, schedule: 'interleaved' as 'gpipe' })).toThrow(/schedule must be/);
  });

  it('refuses models whose layers do not form a chain', () => {
    const input = tf.input({ shape: [4] });
    const a = tf.layers.dense({ units: 3 }).apply(input) as tf.SymbolicTensor;
    const b = tf.layers.dense({ units: 3 }).apply(input) as tf.SymbolicTensor;
    const branched = tf.model({ inputs: input, outputs: tf.layers.add().apply([a, b]) as tf.SymbolicTensor });
    expect(() => new PipelineModel(branched, { comm, stages: 1 })).toThrow(/do not form a chain/);
    const two = tf.model({ inputs: input, outputs: [a, b] });
    expect(() => new PipelineModel(two, { comm, stages: 1 })).toThrow(/1 inputs and 2 outputs/);
    expect(() => new PipelineModel(() => [tf.layers.dense({ units: 2 })], { comm, stages: 1 })).toThrow(/needs an inputShape/);
    expect(() => new PipelineModel({} as tf.Sequential, { comm, stages: 1 })).toThrow(/model must be a tf.Sequential/);
    const penalisedOutput = () => [tf.layers.dense({ inputShape: [4], units: 2, activityRegularizer: tf.regularizers.l2() })];
    expect(() => new PipelineModel(penalisedOutput, { comm, stages: 1 })).toThrow(/activity regularizer/);
  });

  it('a functional chain is accepted, input layers not counted', () => {
    const input = tf.input({ shape: [4] });
    const out = tf.layers.dense({ units: 2 }).apply(tf.layers.dense({ units: 3 }).apply(input)) as tf.SymbolicTensor;
    const pipe = new PipelineModel(tf.model({ inputs: input, outputs: out }), { comm, stages: 1 });
    expect(pipe.layerRange).toEqual([0, 2]);
    expect(pipe.stage).toBe(0);
    expect(pipe.stageParams).toEqual([15 + 8]);
  });

  it('refuses a DistributedOptimizer, unknown losses and metrics', () => {
    const pipe = new PipelineModel(mlp(), { comm, stages: 1 });
    expect(() => pipe.compile({ optimizer: new DistributedOptimizer(tf.train.sgd(0.1), { comm }), loss: 'mse' })).toThrow(/not a DistributedOptimizer/);
    expect(() => pipe.compile({ optimizer: 'sgd', loss: 'hinge-ish' })).toThrow(/unknown loss 'hinge-ish'/);
    expect(() => pipe.compile({ optimizer: 'sgd', loss: 'mse', metrics: ['recall'] })).toThrow(/unknown metric 'recall'/);
  });

  it('fit refuses a batch not divisible by microBatches, before training anything', async () => {
    const model = mlp();
    const before = model.getWeights().map((w) => Array.from(w.dataSync()));
    const pipe = new PipelineModel(model, { comm, stages: 1, microBatches: 3 });
    pipe.compile({ optimizer: 'sgd', loss: 'mse' });
    const fit = pipe.fit(tf.zeros([8, 4]), tf.ones([8, 2]), { batchSize: 8 });
    await expect(fit).rejects.toThrow(/batchSize 8 is not divisible by microBatches 3/);
    await expect(fit).rejects.toMatchObject({ code: 'ERR_RINGTRAIN_ARGUMENT' });
    expect(model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before);
    await expect(pipe.fit(tf.zeros([8, 5]), tf.ones([8, 2]), { batchSize: 6 })).rejects.toThrow(/xs rows have the shape \[5\]/);
    await expect(pipe.fit(tf.zeros([8, 4]), tf.ones([7, 2]), { batchSize: 6 })).rejects.toThrow(/xs has 8 rows but ys has 7/);
    const uncompiled = new PipelineModel(mlp(), { comm, stages: 1 });
    await expect(uncompiled.fit(tf.zeros([8, 4]), tf.ones([8, 2]))).rejects.toThrow(/call compile/);
  });
});
