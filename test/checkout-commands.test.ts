/**
 * Commands a developer runs in a source checkout: `npm pack` refuses to pack without a current
 * prebuilt addon (scripts/check-prebuild.mjs as `prepack`), and `npx ringtrain` runs the checkout's
 * own launcher even with a fresh npx cache and without node_modules/.bin/ringtrain (npm self-exec:
 * scripts/npx-self.mjs).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, runCommand } from './helpers/processes.js';

const PACKAGE = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-checkout-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** The environment without what an outer `npm test` put there (npm_config_*, npm_lifecycle_*, ...). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k))), ...extra };
}

describe('npm pack in a checkout', () => {
  it('fails without a prebuilt binary for this machine, telling to run npm run build:prebuild, and writes no tarball', async () => {
    // A staging copy of what the check reads: package.json, scripts/ and the native sources, no prebuilds/.
    const stage = path.join(work, 'stage');
    const files = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard', 'package.json', 'scripts', 'native', 'cmake', 'CMakeLists.txt', 'binding.gyp'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).stdout.split('\0').filter((f) => f && fs.existsSync(path.join(ROOT, f)));
    expect(files).toContain('scripts/check-prebuild.mjs');
    for (const f of files) {
      fs.mkdirSync(path.dirname(path.join(stage, f)), { recursive: true });
      fs.copyFileSync(path.join(ROOT, f), path.join(stage, f));
    }
    expect(fs.existsSync(path.join(stage, 'prebuilds'))).toBe(false);
    const dest = path.join(work, 'packed');
    fs.mkdirSync(dest);
    const r = await runCommand('npm', ['pack', '--pack-destination', dest], { cwd: stage, env: cleanEnv(), timeoutMs: 60_000 });
    expect(r.code, r.stdout + r.stderr).not.toBe(0);
    expect(r.stderr).toMatch(/ringtrain: refusing to pack: no prebuilt binary prebuilds\/linux-(x64|arm64)\/ringtrain\.(glibc|musl)\.node/);
    expect(r.stderr).toContain('run `npm run build:prebuild` first');
    expect(fs.readdirSync(dest)).toEqual([]);
  });
});

describe('npx ringtrain in the checkout', () => {
  it("runs the checkout's launcher with a fresh npx cache and no node_modules/.bin/ringtrain, and relinks the bin", async () => {
    const bin = path.join(ROOT, 'node_modules', '.bin', 'ringtrain');
    fs.rmSync(bin, { force: true });
    try {
      const env = cleanEnv({ npm_config_cache: path.join(work, 'npm-cache'), npm_config_update_notifier: 'false' });
      const first = await runCommand('npx', ['--yes', 'ringtrain', '--version'], { env, timeoutMs: 90_000 });
      expect(first.code, first.stdout + first.stderr).toBe(0);
      expect(first.stdout.trim()).toBe(PACKAGE.version);
      // It neither compiled the addon nor failed (a failure would leave npm's cache broken).
      expect(first.stdout + first.stderr).not.toMatch(/cmake-js|node-gyp rebuild|ENOENT/);
      expect(fs.readlinkSync(bin)).toBe(path.join('..', '..', 'dist', 'cli.js'));
      // The second run reuses the npx cache.
      const again = await runCommand('npx', ['ringtrain', '--version'], { env, timeoutMs: 60_000 });
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(again.stdout.trim()).toBe(PACKAGE.version);
    } finally {
      if (!fs.existsSync(bin)) spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'link-bins.mjs')]);
    }
  });
});
