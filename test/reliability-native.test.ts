/**
 * The native core's own tests (native/test): reduction kernels against scalar references for every
 * dtype and op (float16/bfloat16 rounding included), float16/bfloat16 conversions (every pattern,
 * every rounding edge), SHA-256 / HMAC-SHA-256 against FIPS 180 and RFC 4231 vectors, and the wire
 * layouts. Built with the project's compiler and Release flags (the shipped, vectorised kernels)
 * into build/native-tests, then run as one executable.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/processes.js';

const BUILD = path.join(ROOT, 'build/native-tests');

function hasCmake(): boolean {
  return spawnSync('cmake', ['--version'], { stdio: 'ignore' }).status === 0;
}

describe('native core unit tests', () => {
  it('kernels, half-float conversions, HMAC vectors and wire layouts all pass', (ctx) => {
    if (!hasCmake()) {
      if (process.env.CI === 'true') throw new Error('cmake is not installed, so the native tests cannot be built');
      ctx.skip('cmake is not installed, so the native unit tests cannot be built');
    }
    execFileSync('cmake', ['-S', ROOT, '-B', BUILD, '-DRINGTRAIN_NATIVE_TESTS=ON', '-DRINGTRAIN_CUDA=OFF', '-DCMAKE_BUILD_TYPE=Release'], {
      stdio: 'pipe',
      timeout: 120_000,
    });
    execFileSync('cmake', ['--build', BUILD, '--target', 'ringtrain_native_tests', '-j', '2'], { stdio: 'pipe', timeout: 300_000 });
    const exe = path.join(BUILD, 'native/test/ringtrain_native_tests');
    const run = spawnSync(exe, [], { encoding: 'utf8', timeout: 120_000 });
    const summary = /^(\d+) passed, (\d+) failed$/m.exec(run.stdout);
    console.log(`native unit tests: ${summary?.[0] ?? 'no summary line'}`);
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(summary, run.stdout).not.toBeNull();
    expect(Number(summary![2])).toBe(0);
    expect(Number(summary![1])).toBeGreaterThanOrEqual(26);
  }, 400_000);
});
