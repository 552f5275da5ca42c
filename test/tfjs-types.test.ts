// ringtrain/tfjs must depend on @tensorflow/tfjs-core alone at runtime (so tfjs-node, tfjs-node-gpu
// and @tensorflow/tfjs users share one code path), and its public types must accept the objects of
// an @tensorflow/tfjs application.
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers/processes.js';

describe('ringtrain/tfjs packaging', () => {
  it('the built modules import only @tensorflow/tfjs-core and ringtrain’s own files', async () => {
    const dir = path.join(REPO, 'dist', 'tfjs');
    const files = (await readdir(dir)).filter((f) => f.endsWith('.js'));
    expect(files).toContain('index.js');
    const specifiers = new Set<string>();
    for (const f of files) {
      const text = await readFile(path.join(dir, f), 'utf8');
      for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
        specifiers.add(m[1] ?? m[2]!);
      }
    }
    const external = [...specifiers].filter((s) => !s.startsWith('.'));
    expect(external).toEqual(['@tensorflow/tfjs-core']);
  });

  it('public types accept a tfjs LayersModel, optimizers, datasets and callbacks (tsc)', async () => {
    const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
    const run = promisify(execFile);
    const result = await run(process.execPath, [tsc, '-p', 'test/fixtures/tfjs-types-tsconfig.json'], { cwd: REPO }).catch(
      (e: { stdout: string; stderr: string }) => e,
    );
    expect(`${result.stdout}${result.stderr}`).toBe('');
  }, 60_000);
});
