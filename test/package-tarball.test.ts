/**
 * The published package, end to end: build the prebuilt addon with prebuildify (through the cmake-js
 * shim), `npm pack`, then install that tarball into empty folders the way a user would and run a real
 * 2-rank all-reduce with what got installed.
 *
 * Everything happens in a temporary staging copy of the checkout (the files git tracks or would
 * track), never in the working tree: `npm run build:prebuild` moves build/Release/*.node away and
 * `npm pack` rebuilds dist/, which would pull the ground from under other processes using this tree.
 *
 * The prebuild is CPU-only unless RINGTRAIN_CUDA is set (nvcc adds about two minutes; what is under
 * test here is the packaging): `RINGTRAIN_CUDA=AUTO npx vitest run test/package-tarball.test.ts`
 * packs and installs the CUDA prebuild instead.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './helpers/processes.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The canonical repository: package.json's repository and homepage, and every absolute README link. */
const REPOSITORY = 'https://github.com/ringtrain/ringtrain';
const PACKAGE = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { name: string; version: string };

/** Programs whose presence would let an install compile: none may be reachable in the no-compiler install. */
const BUILD_TOOLS = ['cc', 'c++', 'gcc', 'g++', 'clang', 'clang++', 'make', 'cmake', 'ninja', 'nvcc', 'python3', 'python'];
/** Shared libraries any Linux machine with a C++ runtime has; anything else (libcudart, ...) would break installs. */
const SYSTEM_LIBS = /^(libstdc\+\+\.so\.6|libgcc_s\.so\.1|libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|ld-linux[-a-z0-9_.]*\.so\.\d)$/;

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  ms: number;
}

/** Runs a program to completion (killed after timeoutMs), stdout and stderr interleaved. */
function run(cmd: string, args: readonly string[], o: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<RunResult> {
  return new Promise((resolve) => {
    const start = Date.now();
    const child = spawn(cmd, args, { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      output += `\n[killed after ${o.timeoutMs} ms]`;
      child.kill('SIGKILL');
    }, o.timeoutMs);
    child.on('error', (e) => (output += `\n[spawn error: ${e.message}]`));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output, ms: Date.now() - start });
    });
  });
}

async function mustRun(cmd: string, args: readonly string[], o: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<RunResult> {
  const r = await run(cmd, args, o);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} (in ${o.cwd}) exited ${r.code ?? r.signal}:\n${r.output.slice(-6000)}`);
  }
  return r;
}

/** The parent's environment without what an outer `npm test` put there (npm_config_*, npm_lifecycle_*, ...). */
function withoutNpmVars(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !/^npm_/i.test(k)));
}

function findOnPath(name: string, searchPath: string): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

let work: string;
let stage: string;
let tarball: string;
/** Entries of the tarball, without the leading package/. */
let tarFiles: string[];
/** A folder holding only node, npm and sh: PATH for the installs that must not compile. */
let toolBin: string;
const timings: Record<string, number> = {};

/** The files of a clean clone plus uncommitted work: git's tracked and untracked-but-not-ignored files. */
function checkoutFiles(): string[] {
  const r = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ls-files failed in ${REPO}: ${r.stderr}`);
  return r.stdout.split('\0').filter((f) => f && fs.existsSync(path.join(REPO, f)) && fs.statSync(path.join(REPO, f)).isFile());
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ringtrain-pkg-'));
  stage = path.join(work, 'stage');
  for (const f of checkoutFiles()) {
    fs.mkdirSync(path.dirname(path.join(stage, f)), { recursive: true });
    fs.copyFileSync(path.join(REPO, f), path.join(stage, f));
    fs.chmodSync(path.join(stage, f), fs.statSync(path.join(REPO, f)).mode);
  }
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(stage, 'node_modules'));

  const env = { ...withoutNpmVars(process.env), RINGTRAIN_CUDA: process.env.RINGTRAIN_CUDA ?? 'OFF' };
  const npm = findOnPath('npm', process.env.PATH ?? '');
  if (!npm) throw new Error('npm is not on PATH');
  timings.prebuildMs = (await mustRun(npm, ['run', 'build:prebuild'], { cwd: stage, env, timeoutMs: 480_000 })).ms;

  // npm pack runs `prepare` (tsc), so dist/ is compiled from the staged sources, not copied.
  const packDir = path.join(work, 'pack');
  fs.mkdirSync(packDir);
  timings.packMs = (await mustRun(npm, ['pack', '--pack-destination', packDir], { cwd: stage, env, timeoutMs: 180_000 })).ms;
  const tgz = fs.readdirSync(packDir).filter((f) => f.endsWith('.tgz'));
  expect(tgz).toEqual([`${PACKAGE.name}-${PACKAGE.version}.tgz`]);
  tarball = path.join(packDir, tgz[0]!);
  const list = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' });
  if (list.status !== 0) throw new Error(`tar -tzf ${tarball}: ${list.stderr}`);
  tarFiles = list.stdout
    .split('\n')
    .filter(Boolean)
    .map((e) => e.replace(/^package\//, ''))
    .sort();

  toolBin = path.join(work, 'bin');
  fs.mkdirSync(toolBin);
  fs.symlinkSync(process.execPath, path.join(toolBin, 'node'));
  fs.symlinkSync(fs.realpathSync(npm), path.join(toolBin, 'npm')); // npm-cli.js: `#!/usr/bin/env node`
  fs.symlinkSync('/bin/sh', path.join(toolBin, 'sh')); // npm runs lifecycle scripts with `sh -c`
}, 600_000);

afterAll(() => {
  console.log(`package-tarball timings (ms): ${JSON.stringify(timings)}`);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** The environment of a user's install: nothing from this machine's build setup leaks in. */
function installEnv(pathValue: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: pathValue, HOME: os.homedir(), TMPDIR: os.tmpdir(), ...extra };
  if (process.env.npm_config_cache) env.npm_config_cache = process.env.npm_config_cache;
  return env;
}

async function installTarball(dir: string, env: NodeJS.ProcessEnv): Promise<RunResult> {
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  // Offline-first: the dependencies (node-addon-api, node-gyp-build, yargs) come from the npm cache.
  return mustRun(
    path.join(toolBin, 'npm'),
    ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', '--no-package-lock'],
    { cwd: dir, env, timeoutMs: 240_000 },
  );
}

/** A user program: imports 'ringtrain' from its node_modules, all-reduces, checks every element. */
const ALLREDUCE_PROGRAM = `
import { init, loadNative } from 'ringtrain';
const comm = await init();
const { rank, size } = comm;
const n = 1_048_579; // odd, not a multiple of any chunking
const x = (i) => (i % 4093) - 2046;
const f = new Float32Array(n);
for (let i = 0; i < n; i++) f[i] = (rank + 1) * x(i);
await comm.allreduce(f, { op: 'sum' });
let bad = 0;
const factor = (size * (size + 1)) / 2;
for (let i = 0; i < n; i++) if (f[i] !== factor * x(i)) bad++;
const g = new Int32Array(4099);
for (let i = 0; i < g.length; i++) g[i] = rank === 0 ? i : g.length - i;
await comm.allreduce(g, { op: 'max' });
for (let i = 0; i < g.length; i++) if (g[i] !== Math.max(i, g.length - i)) bad++;
await comm.close();
console.log(JSON.stringify({ rank, size, bad, checked: n + g.length, buildSystem: loadNative().buildInfo.buildSystem }));
process.exit(bad === 0 ? 0 : 1);
`;

interface RankReport {
  rank: number;
  size: number;
  bad: number;
  checked: number;
  buildSystem: string;
}

async function allreduceTwoRanks(dir: string, pathValue: string): Promise<RankReport[]> {
  fs.writeFileSync(path.join(dir, 'allreduce.mjs'), ALLREDUCE_PROGRAM);
  const port = await freePort();
  const results = await Promise.all(
    [0, 1].map((rank) =>
      run(path.join(toolBin, 'node'), ['allreduce.mjs'], {
        cwd: dir,
        env: installEnv(pathValue, {
          RINGTRAIN_RANK: String(rank),
          RINGTRAIN_SIZE: '2',
          RINGTRAIN_ADDR: `127.0.0.1:${port}`,
          RINGTRAIN_TIMEOUT_MS: '20000',
        }),
        timeoutMs: 90_000,
      }),
    ),
  );
  return results.map((r, rank) => {
    expect(r.code, `rank ${rank} output:\n${r.output}`).toBe(0);
    const last = r.output.trim().split('\n').pop() ?? '';
    return JSON.parse(last) as RankReport;
  });
}

interface InfoJson {
  addon: { path: string; prebuilt: boolean; buildSystem: string; napiVersion: number; cuda: boolean };
}

async function installedInfo(dir: string, pathValue: string): Promise<InfoJson> {
  // Through the bin link npm made, as a user would call it.
  const r = await mustRun(path.join(dir, 'node_modules', '.bin', 'ringtrain'), ['info', '--json'], {
    cwd: dir,
    env: installEnv(pathValue),
    timeoutMs: 30_000,
  });
  return JSON.parse(r.output) as InfoJson;
}

describe('the npm package', () => {
  it('npm pack ships the prebuilt addon, compiled JS with types, the node-gyp fallback sources, LICENSE and README, and nothing else', () => {
    const allowed = [
      /^package\.json$/,
      /^README\.md$/,
      /^LICENSE$/,
      /^binding\.gyp$/,
      /^scripts\/(install|prepare|npx-self)\.mjs$/,
      /^prebuilds\/linux-x64\/[^/]+\.node$/,
      /^dist\/.+\.(js|d\.ts)$/,
      /^native\/src\/(core|addon)\/[^/]+\.(cpp|h)$/,
      // The CPU-only build of the device API (the stub says "built without CUDA") and the core's
      // DeviceReducer over it.
      /^native\/cuda\/(device_api(\.h|_common\.cpp|_stub\.cpp)|device_allreduce\.(cpp|h))$/,
    ];
    const unexpected = tarFiles.filter((f) => !allowed.some((re) => re.test(f)));
    expect(unexpected, `unexpected files in ${path.basename(tarball)}`).toEqual([]);

    expect(tarFiles.filter((f) => f.startsWith('prebuilds/'))).toEqual([`prebuilds/linux-x64/${PACKAGE.name}.glibc.node`]);
    for (const f of ['package.json', 'LICENSE', 'binding.gyp', 'scripts/install.mjs', 'dist/index.js', 'dist/index.d.ts',
      'dist/tfjs/index.js', 'dist/tfjs/index.d.ts', 'dist/cli.js', 'dist/bench-cli.js']) {
      expect(tarFiles, f).toContain(f);
    }
    // README.md is shipped whenever the checkout has one (npm always packs it).
    if (fs.existsSync(path.join(REPO, 'README.md'))) expect(tarFiles).toContain('README.md');
    else console.warn('package-tarball: the checkout has no README.md, so the package ships none');

    // Types for every module; no source maps (they point at src/, which is not shipped).
    for (const js of tarFiles.filter((f) => f.endsWith('.js'))) expect(tarFiles, `types of ${js}`).toContain(js.replace(/\.js$/, '.d.ts'));
    expect(tarFiles.filter((f) => f.endsWith('.map'))).toEqual([]);

    // The node-gyp fallback has every source binding.gyp compiles and every header beside them.
    const gyp = JSON.parse(fs.readFileSync(path.join(stage, 'binding.gyp'), 'utf8')) as { targets: { sources: string[] }[] };
    for (const src of gyp.targets.flatMap((t) => t.sources)) expect(tarFiles, `binding.gyp source ${src}`).toContain(src);
    for (const dir of ['native/src/core', 'native/src/addon']) {
      for (const f of fs.readdirSync(path.join(stage, dir))) expect(tarFiles, `${dir}/${f}`).toContain(`${dir}/${f}`);
    }

    const pkg = JSON.parse(fs.readFileSync(path.join(stage, 'package.json'), 'utf8')) as {
      os: string[];
      cpu: string[];
      engines: { node: string };
      repository: { url: string };
      homepage: string;
      exports: Record<string, Record<string, string> | string>;
      scripts: Record<string, string>;
    };
    expect(pkg.os).toEqual(['linux']);
    expect(pkg.cpu).toEqual(['x64', 'arm64']);
    // require() of ES modules, which CommonJS users of the package rely on, is on by default from 20.19.
    expect(pkg.engines.node).toBe('>=20.19');
    for (const entry of ['.', './tfjs']) expect(Object.keys(pkg.exports[entry] as object)).toEqual(['types', 'import', 'require', 'default']);
    expect(pkg.repository.url).toBe(`git+${REPOSITORY}.git`);
    expect(pkg.homepage).toBe(`${REPOSITORY}#readme`);
    // Lifecycle scripts npm may run in an installed package name only files the package ships.
    for (const name of ['preinstall', 'install', 'postinstall', 'prepare']) {
      const script = pkg.scripts[name];
      if (script === undefined) continue;
      expect(script, `${name} script`).not.toMatch(/\btsc\b/);
      for (const file of script.match(/[\w./-]+\.(?:mjs|cjs|js)\b/g) ?? []) expect(tarFiles, `${name} runs ${file}`).toContain(file);
    }
  });

  it('every link in the packed README resolves: relative ones to a file in the package, the rest to the canonical repository', () => {
    const readme = spawnSync('tar', ['-xzOf', tarball, 'package/README.md'], { encoding: 'utf8' });
    expect(readme.status, readme.stderr).toBe(0);
    const targets = [
      ...[...readme.stdout.matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!),
      ...[...readme.stdout.matchAll(/<(?:img|a)\s[^>]*(?:src|href)="([^"]+)"/g)].map((m) => m[1]!),
    ];
    expect(targets.length).toBeGreaterThan(5);
    const relative = targets.filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t) && !t.startsWith('#'));
    const missing = relative.filter((t) => !tarFiles.includes(path.posix.normalize(t.split('#')[0]!)));
    expect(missing, 'relative README links to files the package does not ship').toEqual([]);
    const github = targets.filter((t) => /^https:\/\/(github\.com|raw\.githubusercontent\.com)\//.test(t));
    for (const t of github) {
      expect(t, 'a GitHub link outside the canonical repository').toMatch(/^https:\/\/(github\.com\/ringtrain\/ringtrain\/blob\/main\/|raw\.githubusercontent\.com\/ringtrain\/ringtrain\/main\/)/);
      // Each points at a file of this checkout, so a renamed doc cannot leave a dead link behind.
      const file = t.replace(/^https:\/\/[^/]+\/ringtrain\/ringtrain\/(blob\/)?main\//, '').split('#')[0]!;
      expect(fs.existsSync(path.join(REPO, file)), `${t}: ${file} is not in the checkout`).toBe(true);
    }
  });

  it('the prebuilt addon links only libraries every glibc Linux has (no CUDA runtime or driver library)', () => {
    const prebuilt = path.join(stage, 'prebuilds', 'linux-x64', `${PACKAGE.name}.glibc.node`);
    const r = spawnSync('readelf', ['-d', prebuilt], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const needed = [...r.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);
    expect(needed).toContain('libc.so.6');
    expect(needed.filter((lib) => !SYSTEM_LIBS.test(lib))).toEqual([]);
  });

  it('installs with no compiler on PATH by loading the prebuilt binary, and two ranks all-reduce exactly with it', async () => {
    for (const tool of BUILD_TOOLS) expect(findOnPath(tool, toolBin), `${tool} on the install PATH`).toBeUndefined();
    const dir = path.join(work, 'consumer-prebuilt');
    const install = await installTarball(dir, installEnv(toolBin));
    timings.installPrebuiltMs = install.ms;
    expect(install.output).toContain(`ringtrain: using prebuilt binary prebuilds/linux-x64/${PACKAGE.name}.glibc.node`);
    expect(install.output).not.toContain('node-gyp');
    expect(install.output, 'the install ran tsc').not.toMatch(/\btsc\b|tsconfig/);
    const installed = path.join(dir, 'node_modules', PACKAGE.name);
    expect(fs.existsSync(path.join(installed, 'build')), 'a build/ folder in the installed package').toBe(false);
    // Should anything run the installed package's prepare, it does nothing (no tsc, no tsconfig.json there).
    const distBefore = fs.statSync(path.join(installed, 'dist', 'index.js')).mtimeMs;
    const prepare = await mustRun(path.join(toolBin, 'npm'), ['run', 'prepare'], { cwd: installed, env: installEnv(toolBin), timeoutMs: 60_000 });
    expect(prepare.output).not.toMatch(/\btsc\b.*-p|error/i);
    expect(fs.statSync(path.join(installed, 'dist', 'index.js')).mtimeMs).toBe(distBefore);

    // CommonJS code requires both entry points (Node's require() of ES modules). ringtrain/tfjs needs
    // its peer @tensorflow/tfjs-core: linked in from this checkout.
    fs.mkdirSync(path.join(dir, 'node_modules', '@tensorflow'), { recursive: true });
    fs.symlinkSync(path.join(REPO, 'node_modules', '@tensorflow', 'tfjs-core'), path.join(dir, 'node_modules', '@tensorflow', 'tfjs-core'));
    fs.writeFileSync(
      path.join(dir, 'require.cjs'),
      "const r = require('ringtrain'); const t = require('ringtrain/tfjs');\n" +
        "console.log(JSON.stringify({ init: typeof r.init, loadNative: typeof r.loadNative, optimizer: typeof t.DistributedOptimizer, napiVersion: r.loadNative().buildInfo.napiVersion }));\n",
    );
    const cjs = await mustRun(path.join(toolBin, 'node'), ['require.cjs'], { cwd: dir, env: installEnv(toolBin), timeoutMs: 60_000 });
    expect(JSON.parse(cjs.output.trim().split('\n').pop()!)).toEqual({ init: 'function', loadNative: 'function', optimizer: 'function', napiVersion: 8 });

    const info = await installedInfo(dir, toolBin);
    expect(info.addon.prebuilt).toBe(true);
    expect(info.addon.path).toBe(path.join(installed, 'prebuilds', 'linux-x64', `${PACKAGE.name}.glibc.node`));
    expect(info.addon.buildSystem).toBe('cmake-js');
    expect(info.addon.napiVersion).toBe(8);
    // RINGTRAIN_CUDA reaches the cmake-js build through prebuildify and the shim.
    const cudaMode = (process.env.RINGTRAIN_CUDA ?? 'OFF').toUpperCase();
    if (cudaMode === 'OFF' || cudaMode === 'ON') expect(info.addon.cuda).toBe(cudaMode === 'ON');

    const start = Date.now();
    const ranks = await allreduceTwoRanks(dir, toolBin);
    timings.allreducePrebuiltMs = Date.now() - start;
    expect(ranks.map((r) => [r.rank, r.size, r.bad, r.buildSystem])).toEqual([
      [0, 2, 0, 'cmake-js'],
      [1, 2, 0, 'cmake-js'],
    ]);
    expect(ranks[0]!.checked).toBe(1_048_579 + 4099);
  }, 300_000);

  it('with RINGTRAIN_BUILD_FROM_SOURCE=1 and a compiler, install compiles binding.gyp with node-gyp and that build all-reduces exactly', async () => {
    const withCompiler = `${toolBin}${path.delimiter}${process.env.PATH ?? ''}`;
    const extra: Record<string, string> = { RINGTRAIN_BUILD_FROM_SOURCE: '1' };
    // Headers from this Node installation (Debian's nodejs ships them), so node-gyp downloads nothing.
    const prefix = path.resolve(path.dirname(process.execPath), '..');
    if (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) extra.npm_config_nodedir = prefix;
    const dir = path.join(work, 'consumer-source');
    const install = await installTarball(dir, installEnv(withCompiler, extra));
    timings.installFromSourceMs = install.ms;
    expect(install.output).not.toContain('using prebuilt binary');
    expect(install.output).toMatch(/ringtrain: (\S+ )?\S*node-gyp\S* rebuild/);
    const installed = path.join(dir, 'node_modules', PACKAGE.name);
    expect(fs.existsSync(path.join(installed, 'build', 'Release', 'ringtrain.node'))).toBe(true);

    // Run without the compiler again: what was built must not need it.
    const info = await installedInfo(dir, toolBin);
    expect(info.addon.prebuilt).toBe(false);
    expect(info.addon.path).toBe(path.join(installed, 'build', 'Release', 'ringtrain.node'));
    expect(info.addon.buildSystem).toBe('node-gyp');
    expect(info.addon.cuda).toBe(false);

    const start = Date.now();
    const ranks = await allreduceTwoRanks(dir, toolBin);
    timings.allreduceFromSourceMs = Date.now() - start;
    expect(ranks.map((r) => [r.rank, r.bad, r.buildSystem])).toEqual([
      [0, 0, 'node-gyp'],
      [1, 0, 'node-gyp'],
    ]);
  }, 300_000);
});
