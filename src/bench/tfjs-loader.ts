/**
 * Finds the TensorFlow.js the user's project has, so the training benchmark runs the backend a
 * real job would: the first of tfjs-node-gpu, tfjs-node, tfjs installed in the current
 * directory's project, else beside ringtrain.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { RingtrainError } from '../errors.js';

export interface LoadedTfjs {
  /** The package's module namespace (typed by the caller). */
  module: unknown;
  package: string;
  label: string;
  /** Where it was found. */
  resolved: string;
}

const PACKAGES: readonly [string, string][] = [
  ['@tensorflow/tfjs-node-gpu', 'tfjs-node-gpu (CUDA)'],
  ['@tensorflow/tfjs-node', 'tfjs-node (native TensorFlow, CPU)'],
  ['@tensorflow/tfjs', 'pure JavaScript (@tensorflow/tfjs)'],
];

export const NO_TFJS_MESSAGE =
  'bench --train needs TensorFlow.js in your project: npm install @tensorflow/tfjs ' +
  '(pure JavaScript), @tensorflow/tfjs-node (native CPU) or @tensorflow/tfjs-node-gpu (CUDA)';

function resolveFrom(base: string, name: string): string | undefined {
  try {
    return createRequire(base).resolve(name);
  } catch {
    return undefined;
  }
}

/** The packages as seen from the project in `cwd`, then from ringtrain's own place. */
export function loadTfjs(cwd: string = process.cwd()): Promise<LoadedTfjs> {
  return loadTfjsFrom([path.join(cwd, 'package.json'), import.meta.url]);
}

/** The first package that resolves from one of `bases` (files or file: URLs whose node_modules are searched). */
export async function loadTfjsFrom(bases: readonly string[]): Promise<LoadedTfjs> {
  for (const [name, label] of PACKAGES) {
    for (const base of bases) {
      const resolved = resolveFrom(base, name);
      if (!resolved) continue;
      try {
        const mod = (await import(pathToFileURL(resolved).href)) as { default?: unknown };
        return { module: mod.default ?? mod, package: name, label, resolved };
      } catch (e) {
        process.stderr.write(`ringtrain-bench: ${name} is installed but failed to load (${(e as Error).message}); trying the next backend\n`);
        break;
      }
    }
  }
  throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', NO_TFJS_MESSAGE);
}
