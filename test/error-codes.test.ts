/**
 * Every error a user can get from init(), a Communicator method or a ringtrain/tfjs export is a
 * RingtrainError whose code is one of those docs/api.md lists. Bad inputs are driven through each
 * public call in this process (a world of one; the argument checks are the same on every rank).
 * The tests run in order: the first ones need a process that has not called init() yet.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { DeviceBuffer, RingtrainError, currentCommunicator, init, type Communicator } from '../dist/index.js';
import * as rt from '../dist/tfjs/index.js';
import { ROOT } from './helpers/processes.js';

/** The codes docs/api.md's table documents. */
const DOCUMENTED = new Set(
  [...fs.readFileSync(path.join(ROOT, 'docs/api.md'), 'utf8').matchAll(/^\| `(ERR_RINGTRAIN_[A-Z_]+)` \|/gm)].map((m) => m[1]!),
);

async function codeOf(what: string, call: () => unknown): Promise<string> {
  let error: unknown;
  try {
    await call();
  } catch (e) {
    error = e;
  }
  expect(error, `${what} did not fail`).toBeDefined();
  expect(error, `${what}: ${String(error)}`).toBeInstanceOf(RingtrainError);
  const code = (error as RingtrainError).code;
  expect(DOCUMENTED, `${what}: code ${code} is not in docs/api.md`).toContain(code);
  expect((error as Error).message).toMatch(/^ringtrain: /);
  return code;
}

const tinyModel = (): tf.LayersModel => {
  const m = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3] })] });
  m.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
  return m;
};

describe('error codes', () => {
  it('docs/api.md documents every code the type allows', () => {
    const source = fs.readFileSync(path.join(ROOT, 'src/errors.ts'), 'utf8');
    const declared = [...source.matchAll(/'(ERR_RINGTRAIN_[A-Z_]+)'/g)].map((m) => m[1]!);
    expect(declared.length).toBeGreaterThan(5);
    expect([...DOCUMENTED].sort()).toEqual([...new Set(declared)].sort());
  });

  it('before init(): helpers that default to its communicator say ERR_RINGTRAIN_NOT_INITIALIZED', async () => {
    await tf.setBackend('cpu');
    expect(await codeOf('currentCommunicator', () => currentCommunicator())).toBe('ERR_RINGTRAIN_NOT_INITIALIZED');
    expect(await codeOf('DistributedOptimizer', () => new rt.DistributedOptimizer(tf.train.sgd(0.1)))).toBe('ERR_RINGTRAIN_NOT_INITIALIZED');
    expect(await codeOf('broadcastModel', () => rt.broadcastModel(tinyModel()))).toBe('ERR_RINGTRAIN_NOT_INITIALIZED');
    expect(await codeOf('averageModel', () => rt.averageModel(tinyModel()))).toBe('ERR_RINGTRAIN_NOT_INITIALIZED');
    expect(await codeOf('allreduceTensor', () => rt.allreduceTensor(tf.scalar(1)))).toBe('ERR_RINGTRAIN_NOT_INITIALIZED');
    expect(await codeOf('averageMetrics', () => rt.averageMetrics({ loss: 1 }))).toBe('ERR_RINGTRAIN_NOT_INITIALIZED');
    expect(await codeOf('shardIndices', () => rt.shardIndices(10))).toBe('ERR_RINGTRAIN_NOT_INITIALIZED');
  });

  it('init() with a bad contract or bad options', async () => {
    const env = {};
    expect(await codeOf('init(null)', () => init(null as never))).toBe('ERR_RINGTRAIN_ARGUMENT');
    expect(await codeOf('rank -1', () => init({ env, rank: -1, size: 2 }))).toBe('ERR_RINGTRAIN_CONTRACT');
    expect(await codeOf('rank >= size', () => init({ env, rank: 2, size: 2, addr: '127.0.0.1:1' }))).toBe('ERR_RINGTRAIN_CONTRACT');
    expect(await codeOf('no address', () => init({ env, rank: 0, size: 2 }))).toBe('ERR_RINGTRAIN_CONTRACT');
    expect(await codeOf('bad address', () => init({ env, rank: 1, size: 2, addr: 'nope' }))).toBe('ERR_RINGTRAIN_CONTRACT');
    expect(await codeOf('bad env value', () => init({ env: { RINGTRAIN_RANK: 'x', RINGTRAIN_SIZE: '2' } }))).toBe('ERR_RINGTRAIN_CONTRACT');
    expect(await codeOf('unknown interface', () => init({ env, rank: 1, size: 2, addr: '127.0.0.1:1', iface: 'no-such-if0' }))).toBe('ERR_RINGTRAIN_CONTRACT');
    expect(await codeOf('unreachable rendezvous', () => init({ env, rank: 1, size: 2, addr: '127.0.0.1:1', timeoutMs: 300 }))).toBe('ERR_RINGTRAIN_TIMEOUT');
  });

  let comm: Communicator;
  it('every Communicator method refuses bad arguments with ERR_RINGTRAIN_ARGUMENT', async () => {
    comm = await init({ env: {} });
    const f = new Float32Array(4);
    const bad: [string, () => unknown][] = [
      ['allreduce(Array)', () => comm.allreduce([1, 2] as never)],
      ['allreduce(null)', () => comm.allreduce(null as never)],
      ['allreduce(Uint32Array)', () => comm.allreduce(new Uint32Array(2) as never)],
      ['allreduce(Uint8ClampedArray)', () => comm.allreduce(new Uint8ClampedArray(2) as never)],
      ['allreduce(DataView)', () => comm.allreduce(new DataView(new ArrayBuffer(4)) as never)],
      ['allreduce op', () => comm.allreduce(f, { op: 'xor' as never })],
      ['allreduce dtype', () => comm.allreduce(f, { dtype: 'int32' })],
      ['allreduce Uint16Array without dtype', () => comm.allreduce(new Uint16Array(2))],
      ['allreduceSync(string)', () => comm.allreduceSync('abc' as never)],
      ['allreduceSync op', () => comm.allreduceSync(f, { op: 'median' as never })],
      ['broadcast root', () => comm.broadcast(f, 1)],
      ['broadcast root NaN', () => comm.broadcast(f, Number.NaN)],
      ['broadcast view', () => comm.broadcast({} as never)],
      ['allgather view', () => comm.allgather(42 as never)],
      ['reducescatter view', () => comm.reducescatter('x' as never)],
      ['reducescatter op', () => comm.reducescatter(f, { op: 'xor' as never })],
      ['send to itself', () => comm.send(f, 0)],
      ['recv tag', () => comm.recv(f, 1, { tag: -1 })],
      ['sendrecv view', () => comm.sendrecv(null as never, 1, f, 1)],
      ['sendSync peer', () => comm.sendSync(f, 5)],
      ['recvSync view', () => comm.recvSync([] as never, 1)],
      ['allreduceDevice count', () => comm.allreduceDevice(1n, -1, 'float32')],
      ['allreduceDevice dtype', () => comm.allreduceDevice(1n, 1, 'complex' as never)],
      ['allreduceDevice pointer', () => comm.allreduceDevice('0x1' as never, 1, 'float32')],
    ];
    for (const [what, call] of bad) expect(await codeOf(what, call), what).toBe('ERR_RINGTRAIN_ARGUMENT');
    // Without a GPU: a documented code too (with one, the null pointer is an argument error).
    expect(['ERR_RINGTRAIN_NO_GPU', 'ERR_RINGTRAIN_ARGUMENT']).toContain(await codeOf('allreduceDevice on 0', () => comm.allreduceDevice(0n, 1, 'float32')));
    expect(['ERR_RINGTRAIN_NO_GPU', 'ERR_RINGTRAIN_ARGUMENT']).toContain(await codeOf('DeviceBuffer(-1)', () => new DeviceBuffer(-1)));
    // The communicator is still usable after refused arguments.
    expect(Array.from(await comm.allreduce(new Int32Array([3])))).toEqual([3]);
  });

  it('ringtrain/tfjs exports refuse bad arguments with ERR_RINGTRAIN_ARGUMENT', async () => {
    const model = tinyModel();
    const bad: [string, () => unknown][] = [
      ['DistributedOptimizer(not an optimizer)', () => new rt.DistributedOptimizer({} as never, { comm })],
      ['DistributedOptimizer op', () => new rt.DistributedOptimizer(tf.train.sgd(0.1), { comm, op: 'max' as never })],
      ['DistributedOptimizer compression', () => new rt.DistributedOptimizer(tf.train.sgd(0.1), { comm, compression: 'zip' as never })],
      ['DistributedOptimizer fusionBytes', () => new rt.DistributedOptimizer(tf.train.sgd(0.1), { comm, fusionBytes: -1 })],
      ['DistributedOptimizer backwardPassesPerStep', () => new rt.DistributedOptimizer(tf.train.sgd(0.1), { comm, backwardPassesPerStep: 0 })],
      ['broadcastModel(null)', () => rt.broadcastModel(null as never, { comm })],
      ['broadcastModel root', () => rt.broadcastModel(model, { comm, root: 3 })],
      ['broadcastVariables(null)', () => rt.broadcastVariables(null as never, { comm })],
      ['broadcastVariables([1])', () => rt.broadcastVariables([1] as never, { comm })],
      ['averageModel({})', () => rt.averageModel({} as never, { comm })],
      ['shardArrays({})', () => rt.shardArrays({}, { comm })],
      ['shardArrays(scalar)', () => rt.shardArrays({ x: tf.scalar(1) }, { comm })],
      ['shardIndices(-1)', () => rt.shardIndices(-1, { comm })],
      ['shardIndices remainder', () => rt.shardIndices(4, { comm, remainder: 'keep' as never })],
      ['shardDataset shuffleBuffer', () => rt.shardDataset(tf.data.array([1, 2, 3]), { comm, shuffleBuffer: 0 })],
      ['LocalSGD syncEvery', () => new rt.LocalSGD({ syncEvery: 0, comm })],
      ['allreduceTensor(array)', () => rt.allreduceTensor([1] as never, { comm })],
      ['allreduceTensor(string tensor)', () => rt.allreduceTensor(tf.tensor(['a']), { comm })],
      ['allreduceTensor(complex64)', () => rt.allreduceTensor(tf.complex([1], [1]), { comm })],
      ['allreduceTensor op', () => rt.allreduceTensor(tf.scalar(1), { comm, op: 'xor' as never })],
      ['allreduceTensor bool sum', () => rt.allreduceTensor(tf.tensor([true]), { comm, op: 'sum' })],
      ['broadcastTensor root', () => rt.broadcastTensor(tf.scalar(1), { comm, root: -1 })],
      ['averageMetrics(null)', () => rt.averageMetrics(null as never, { comm })],
      ['averageMetrics(string entry)', () => rt.averageMetrics({ loss: 'x' } as never, { comm })],
      ['averageLogs(string entry)', () => rt.averageLogs(comm, { loss: 'x' } as never)],
      ['averageLogs(null)', () => rt.averageLogs(comm, null as never)],
    ];
    for (const [what, call] of bad) expect(await codeOf(what, call), what).toBe('ERR_RINGTRAIN_ARGUMENT');
    const disposed = tf.scalar(1);
    disposed.dispose();
    expect(await codeOf('allreduceTensor(disposed)', () => rt.allreduceTensor(disposed, { comm }))).toBe('ERR_RINGTRAIN_ARGUMENT');
  });

  it('after close(): every method and every helper given that communicator says ERR_RINGTRAIN_CLOSED', async () => {
    await comm.close();
    const f = new Float32Array(2);
    const calls: [string, () => unknown][] = [
      ['allreduce', () => comm.allreduce(f)],
      ['allreduceSync', () => comm.allreduceSync(f)],
      ['broadcast', () => comm.broadcast(f)],
      ['allgather', () => comm.allgather(f)],
      ['barrier', () => comm.barrier()],
      ['reducescatter', () => comm.reducescatter(f)],
      ['send', () => comm.send(f, 1)],
      ['recvSync', () => comm.recvSync(f, 1)],
      ['allreduceDevice', () => comm.allreduceDevice(1n, 1, 'float32')],
      ['currentCommunicator', () => currentCommunicator()],
      ['DistributedOptimizer', () => new rt.DistributedOptimizer(tf.train.sgd(0.1))],
      ['allreduceTensor', () => rt.allreduceTensor(tf.scalar(1), { comm })],
      ['averageLogs', () => rt.averageLogs(comm, { loss: 1 })],
    ];
    for (const [what, call] of calls) expect(await codeOf(what, call), what).toBe('ERR_RINGTRAIN_CLOSED');
    await comm.close(); // idempotent
  });
});
