#!/usr/bin/env node
// npm install hook. Order: a prebuilt binary that loads on this machine; else, in a source checkout,
// the cmake-js build (CPU + CUDA when nvcc is found); else node-gyp from binding.gyp (CPU only).
// RINGTRAIN_BUILD_FROM_SOURCE=1 skips the prebuilt binary.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { npxSelfInstall, RUN_INSTEAD } from './npx-self.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

if (npxSelfInstall(root)) {
  // Never build (or fail) here: see npx-self.mjs.
  try {
    require('node-gyp-build').path(root);
  } catch {
    console.error(`ringtrain: this checkout's addon is not built: run \`npm ci\` (or \`npm run build\`) first, ${RUN_INSTEAD}`);
  }
  process.exit(0);
}

function prebuiltLoads() {
  try {
    const found = require('node-gyp-build').path(root);
    if (!found.includes(`${path.sep}prebuilds${path.sep}`)) return false; // a stale local build is rebuilt
    require(found);
    console.log(`ringtrain: using prebuilt binary ${path.relative(root, found)}`);
    return true;
  } catch {
    return false;
  }
}

function run(cmd, args) {
  console.log(`ringtrain: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', shell: false });
  if (r.error) return false;
  return r.status === 0;
}

if (process.env.RINGTRAIN_BUILD_FROM_SOURCE !== '1' && prebuiltLoads()) process.exit(0);

const checkout = fs.existsSync(path.join(root, 'CMakeLists.txt'));
let cmakeJs;
try {
  cmakeJs = require.resolve('cmake-js/bin/cmake-js');
} catch {
  cmakeJs = undefined;
}
if (checkout && cmakeJs && run(process.execPath, [cmakeJs, 'compile', '--CDCMAKE_BUILD_TYPE=Release'])) process.exit(0);

const nodeGyp = process.env.npm_config_node_gyp;
const ok = nodeGyp ? run(process.execPath, [nodeGyp, 'rebuild']) : run('node-gyp', ['rebuild']);
if (!ok) {
  console.error(
    'ringtrain: no prebuilt binary fits this machine and building from source failed.\n' +
      '  Needs: a C++17 compiler (g++ >= 9 or clang >= 10), make, python3 (node-gyp), or cmake >= 3.18 in a source checkout.',
  );
  process.exit(1);
}
