// ElasticState's argument errors, in this process on a world of one: a PipelineModel cannot be
// elastic, and a field may not take the name of one of the state's own members.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { init, type Communicator } from '../../dist/index.js';
import { ElasticState, PipelineModel, runElastic } from '../../dist/tfjs/index.js';

let comm: Communicator;
beforeAll(async () => {
  await tf.setBackend('cpu');
  comm = await init({ env: {} });
});
afterAll(async () => {
  await comm.close();
});

function errorOf(f: () => unknown): { code?: string; message?: string } {
  try {
    f();
  } catch (e) {
    return e as { code?: string; message?: string };
  }
  throw new Error('expected a throw');
}

const mlp = (): tf.Sequential => tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3 }), tf.layers.dense({ units: 2 })] });

describe('ElasticState argument errors', () => {
  it('refuses a PipelineModel (ERR_RINGTRAIN_ARGUMENT), so runElastic never starts with one', () => {
    const pipeline = new PipelineModel(mlp(), { comm, stages: 1 });
    const e = errorOf(() => new ElasticState({ model: pipeline as never, epoch: 0 }));
    expect(e.code).toBe('ERR_RINGTRAIN_ARGUMENT');
    expect(e.message).toMatch(/ElasticState: a PipelineModel cannot be elastic .*train the model data-parallel with DistributedOptimizer, or run the pipeline without --min-np/);
    let ran = false;
    expect(() => runElastic(new ElasticState({ model: pipeline as never }), () => (ran = true))).toThrow(/a PipelineModel cannot be elastic/);
    expect(ran).toBe(false);
  });

  it("refuses a field named like one of the state's members (ERR_RINGTRAIN_ARGUMENT, naming it)", () => {
    for (const name of ['rank', 'size', 'commit', 'commitId', 'onReset', 'sync', 'dispose', 'heldTensors', 'snapshots', 'fieldNames', 'constructor', 'toString']) {
      const e = errorOf(() => new ElasticState({ [name]: 1 }));
      expect(e.code, name).toBe('ERR_RINGTRAIN_ARGUMENT');
      expect(e.message, name).toBe(`ringtrain: ElasticState: '${name}' is reserved; name the field differently`);
    }
  });

  it('takes ordinary fields and a plain model', () => {
    const model = mlp();
    const s = new ElasticState({ model, epoch: 3, history: [1, 2], note: null });
    expect(s.model).toBe(model);
    expect([s.epoch, s.history, s.note]).toEqual([3, [1, 2], null]);
    expect([s.rank, s.size, s.commitId]).toEqual([0, 1, -1]);
    s.dispose();
  });
});
