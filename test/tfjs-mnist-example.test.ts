// The README's main command: examples/mnist.mjs on 2 ranks through the launcher. Run here with
// fp16 gradient compression, so this is also the "fp16 converges on MNIST" test.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers/processes.js';

interface Summary {
  size: number;
  accuracy: number;
  trainSeconds: number;
  samplesPerSec: number;
  allreduceMs: number;
  steps: number;
  bytes: number;
  compression: string;
  savedTo: string;
}

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('examples/mnist.mjs', () => {
  it('trains on 2 ranks with fp16 gradients to over 90% held-out accuracy and saves a loadable model', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ringtrain-mnist-'));
    try {
      const { code, out } = await run(
        ['dist/cli.js', '-np', '2', '--', process.execPath, 'examples/mnist.mjs', '--compression', 'fp16', '--epochs', '3', '--json', '--out', dir],
        190_000,
      );
      expect(code, out).toBe(0);
      const line = out.split('\n').find((l) => l.includes('RESULT '));
      expect(line, out).toBeDefined();
      const s = JSON.parse(line!.slice(line!.indexOf('RESULT ') + 7)) as Summary;
      expect(s.size).toBe(2);
      expect(s.compression).toBe('fp16');
      expect(s.accuracy, out).toBeGreaterThan(0.9);
      // float16 on the wire: 2 bytes per parameter per step.
      expect(s.bytes / s.steps).toBe(2 * 50890);
      expect(out).toMatch(/summary: .* s training, \d+ samples\/s over 2 rank\(s\), .* s in all-reduce/);

      // The saved files load back into a working model.
      const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8'));
      const weights = await readFile(path.join(dir, 'weights.bin'));
      await tf.setBackend('cpu');
      const model = await tf.loadLayersModel(
        tf.io.fromMemory({
          modelTopology: json.modelTopology,
          weightSpecs: json.weightsManifest[0].weights,
          weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
        }),
      );
      expect(model.countParams()).toBe(50890);
      expect(weights.byteLength).toBe(50890 * 4);
      model.dispose();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 200_000);

  it('--pipeline 2 trains the model cut into two stages on 2 ranks and saves the whole model', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ringtrain-mnist-pipe-'));
    try {
      const { code, out } = await run(
        ['dist/cli.js', '-np', '2', '--', process.execPath, 'examples/mnist.mjs', '--pipeline', '2', '--micro-batches', '4', '--batch', '64', '--epochs', '1', '--json', '--out', dir],
        190_000,
      );
      expect(code, out).toBe(0);
      const line = out.split('\n').find((l) => l.includes('RESULT '));
      expect(line, out).toBeDefined();
      const s = JSON.parse(line!.slice(line!.indexOf('RESULT ') + 7)) as { stages: number; accuracy: number; stageParams: number[]; predictedBubble: number };
      expect(s.stages).toBe(2);
      expect(s.stageParams).toEqual([50240, 650]);
      expect(s.predictedBubble).toBeCloseTo(1 / 5, 12);
      expect(s.accuracy, out).toBeGreaterThan(0.8);
      expect(out).toMatch(/stage 0: layers 0\.\.1, 50240 parameters \(200960 bytes per rank\)/);
      const weights = await readFile(path.join(dir, 'weights.bin'));
      expect(weights.byteLength).toBe(50890 * 4);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 200_000);
});
