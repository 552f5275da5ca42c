#!/usr/bin/env node
// npm `prepare`. In a source checkout (`npm ci`, `npm pack`): compiles the TypeScript into dist/ and
// links this package's own commands into node_modules/.bin (where older npx looks). In an
// installed package there is nothing to do: dist/ ships compiled, and neither tsconfig.json nor src/ nor typescript is there.
// npm does not run `prepare` for registry or tarball installs; the guard keeps it harmless if
// something ever does (this file ships so that the script named in package.json exists).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { npxSelfInstall, RUN_INSTEAD } from './npx-self.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
if (!fs.existsSync(path.join(root, 'tsconfig.json')) || !fs.existsSync(path.join(root, 'src'))) process.exit(0);

const require = createRequire(import.meta.url);
const tsc = [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json')];
const linkBins = [path.join(root, 'scripts', 'link-bins.mjs')];
// Under `npx ringtrain` in the checkout, compile only when there is nothing to run, and never fail
// (see npx-self.mjs).
const selfExec = npxSelfInstall(root);
const steps = selfExec && fs.existsSync(path.join(root, 'dist', 'cli.js')) ? [linkBins] : [tsc, linkBins];
for (const args of steps) {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status === 0) continue;
  if (!selfExec) process.exit(r.status ?? 1);
  console.error(`ringtrain: compiling this checkout failed: run \`npm run build\` and fix what it reports, ${RUN_INSTEAD}`);
  process.exit(0);
}
