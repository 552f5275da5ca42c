#!/usr/bin/env node
// In a source checkout, links this package's own commands into node_modules/.bin, so
// `npx ringtrain ...` runs the checkout's launcher (npx looks there first) instead of fetching a
// package of that name from the registry. Runs from `prepare`; harmless to repeat.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const binDir = path.join(root, 'node_modules', '.bin');
if (!fs.existsSync(path.join(root, 'node_modules'))) process.exit(0);
fs.mkdirSync(binDir, { recursive: true });
for (const [name, target] of Object.entries(pkg.bin ?? {})) {
  const link = path.join(binDir, name);
  const dest = path.relative(binDir, path.join(root, target));
  try {
    fs.rmSync(link, { force: true });
    fs.symlinkSync(dest, link);
    fs.chmodSync(path.join(root, target), 0o755);
  } catch (e) {
    console.warn(`ringtrain: could not link ${name}: ${e.message}`);
  }
}
