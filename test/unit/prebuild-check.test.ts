/**
 * The prepack guard (scripts/check-prebuild.mjs): a package is packed only with a prebuilt addon for
 * this machine that is newer than every native source.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { prebuildPath, prebuildProblem } from '../../scripts/check-prebuild.mjs';

let root: string;
const binary = () => path.join(root, prebuildPath('ringtrain'));
function write(rel: string, mtimeS: number): void {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, rel);
  fs.utimesSync(p, mtimeS, mtimeS);
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-prebuild-check-'));
  fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'ringtrain' }));
  write('native/src/core/ring.cpp', 1000);
  write('native/cuda/elementwise.cu', 1000);
  write('CMakeLists.txt', 1000);
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('prepack prebuild check', () => {
  it("names this platform's prebuildify path", () => {
    expect(prebuildPath('ringtrain', 'linux', 'x64', 'glibc')).toBe(path.join('prebuilds', 'linux-x64', 'ringtrain.glibc.node'));
    expect(prebuildPath('ringtrain', 'linux', 'arm64', 'musl')).toBe(path.join('prebuilds', 'linux-arm64', 'ringtrain.musl.node'));
  });

  it('refuses a checkout without prebuilds/, saying to run npm run build:prebuild', () => {
    const problem = prebuildProblem(root);
    expect(problem).toMatch(/^ringtrain: refusing to pack: no prebuilt binary prebuilds\/linux-(x64|arm64)\/ringtrain\.(glibc|musl)\.node/);
    expect(problem).toContain('npm run build:prebuild');
  });

  it('accepts a binary newer than every native source', () => {
    write(prebuildPath('ringtrain'), 2000);
    expect(fs.existsSync(binary())).toBe(true);
    expect(prebuildProblem(root)).toBeNull();
  });

  it('refuses a binary older than a native source, naming the source', () => {
    write(prebuildPath('ringtrain'), 2000);
    write('native/cuda/device_allreduce.cpp', 3000);
    expect(prebuildProblem(root)).toMatch(/is older than native\/cuda\/device_allreduce\.cpp; run `npm run build:prebuild`/);
    write('native/cuda/device_allreduce.cpp', 1500);
    write('binding.gyp', 2500);
    expect(prebuildProblem(root)).toMatch(/is older than binding\.gyp/);
  });

  it("ignores native/cuda's tests and benches, which the addon is not built from", () => {
    write(prebuildPath('ringtrain'), 2000);
    write('native/cuda/test/cuda_test.cpp', 3000);
    write('native/cuda/bench/cuda_bench.cpp', 3000);
    expect(prebuildProblem(root)).toBeNull();
  });
});
