#!/usr/bin/env node
// Stands in for node-gyp when prebuildify builds the shipped binary (`npm run prebuild`):
//
//   prebuildify --napi --node-gyp ./scripts/cmake-js-as-node-gyp.mjs
//
// prebuildify 6 spawns its "node-gyp" directly (no shell) as
//   <this> rebuild --target=<node version> --devdir=<header cache> --arch=<arch> --release|--debug
// and then takes the first *.node in build/Release (build/Debug with --debug), strips it and moves
// it to prebuilds/<platform>-<arch>/. This script answers that call with a cmake-js build, so the
// prebuild is the CMake build (CUDA data path when a CUDA compiler is found, see cmake/cuda.cmake;
// RINGTRAIN_CUDA=OFF|ON in the environment decides otherwise) instead of binding.gyp's CPU-only one.
//
// The CMake tree lives in build/prebuild/, apart from the developer's build/ tree: `rebuild` wipes
// only it, and a developer's CMake cache and options in build/ survive a prebuild. The finished
// addon is then placed at build/Release/ringtrain.node, where prebuildify looks for it (and from
// where it moves it away: after a prebuild the checkout loads prebuilds/ until the next build).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const ADDON = 'ringtrain.node';
const USAGE = 'usage: cmake-js-as-node-gyp.mjs rebuild|build [--release|--debug] [--arch=ARCH] [--target=VERSION] [--devdir=DIR]';

function fail(message) {
  console.error(`cmake-js-as-node-gyp: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const out = { command: undefined, config: 'Release', arch: os.arch(), target: undefined };
  for (const arg of argv) {
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    const value = eq >= 0 ? arg.slice(eq + 1) : undefined;
    if (!arg.startsWith('-')) {
      if (out.command !== undefined) fail(`unexpected argument '${arg}'\n${USAGE}`);
      out.command = arg;
    } else if (name === '--release') out.config = 'Release';
    else if (name === '--debug') out.config = 'Debug';
    else if (name === '--arch' && value) out.arch = value;
    else if (name === '--target' && value) out.target = value;
    // node-gyp's header cache. The addon is N-API only and cmake-js takes the headers from the
    // node-api-headers package, so nothing is downloaded and this has nothing to point at.
    else if (name === '--devdir') continue;
    else if (name === '--runtime' && value === 'node') continue;
    else if (name === '--runtime') fail(`runtime '${value}' is not supported: ringtrain prebuilds are N-API builds for Node.js`);
    else fail(`unsupported option '${arg}'\n${USAGE}`);
  }
  if (out.command !== 'rebuild' && out.command !== 'build') fail(`command must be rebuild or build, got '${out.command ?? ''}'\n${USAGE}`);
  // A CMake build compiles for the host; cross builds need a toolchain file this script doesn't pick.
  if (out.arch !== os.arch()) fail(`--arch=${out.arch} differs from this machine's ${os.arch()}: cross-compiling is not supported`);
  return out;
}

const opts = parseArgs(process.argv.slice(2));
const root = process.cwd();
if (!fs.existsSync(path.join(root, 'CMakeLists.txt'))) fail(`no CMakeLists.txt in ${root}: run this from the ringtrain checkout`);

let cmakeJs;
try {
  cmakeJs = createRequire(path.join(root, 'package.json')).resolve('cmake-js/bin/cmake-js');
} catch {
  fail('cmake-js is not installed (npm install in the checkout installs it as a dev dependency)');
}

const workDir = path.join(root, 'build', 'prebuild');
const args = [
  cmakeJs,
  opts.command,
  '--out', workDir,
  '--config', opts.config,
  '--arch', opts.arch,
  `--CDCMAKE_BUILD_TYPE=${opts.config}`,
];
console.log(`cmake-js-as-node-gyp: node ${args.map((a) => path.relative(root, a) || a).join(' ')}` +
  (process.env.RINGTRAIN_CUDA ? ` (RINGTRAIN_CUDA=${process.env.RINGTRAIN_CUDA})` : ''));
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (r.error) fail(`could not start cmake-js: ${r.error.message}`);
if (r.status !== 0) fail(`cmake-js ${opts.command} failed (exit ${r.status ?? r.signal})`);

const built = path.join(workDir, opts.config, ADDON);
if (!fs.existsSync(built)) fail(`cmake-js succeeded but ${path.relative(root, built)} is missing`);

// Replace by rename, never by writing into the old file: a process that has the previous addon
// loaded keeps its mapping of the old inode intact.
const outDir = path.join(root, 'build', opts.config);
fs.mkdirSync(outDir, { recursive: true });
const tmp = path.join(outDir, `.${ADDON}.${process.pid}.tmp`);
fs.copyFileSync(built, tmp);
fs.renameSync(tmp, path.join(outDir, ADDON));

// prebuildify ships the first *.node it finds there: anything else would be ambiguous.
const others = fs.readdirSync(outDir).filter((f) => f.endsWith('.node') && f !== ADDON);
if (others.length > 0) fail(`${path.relative(root, outDir)} also holds ${others.join(', ')}: remove them so that prebuildify ships ${ADDON}`);
console.log(`cmake-js-as-node-gyp: ${path.relative(root, path.join(outDir, ADDON))} ready`);
