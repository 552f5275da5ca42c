#!/usr/bin/env node
// npm `prepack`: refuses to pack a package without a current prebuilt addon for this machine.
// Without one the tarball installs by compiling on every user's machine (or fails where there is
// no compiler), and nothing would say so at pack time. "Current" means newer than every native
// source the binary is built from. RINGTRAIN_PACK_WITHOUT_PREBUILD=1 packs anyway (a source-only
// package, on purpose).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** What the native build reads (tests and benches of native/cuda are not part of the addon). */
const SOURCES = ['native/src', 'native/cuda', 'cmake', 'CMakeLists.txt', 'binding.gyp'];
const NOT_BUILT = new Set(['native/cuda/test', 'native/cuda/bench']);

/** prebuildify --napi --tag-libc's path for this platform, relative to the package root. */
export function prebuildPath(pkgName, platform = process.platform, arch = process.arch, libc = currentLibc()) {
  return path.join('prebuilds', `${platform}-${arch}`, `${pkgName}.${libc}.node`);
}

function currentLibc() {
  if (process.platform !== 'linux') return 'glibc';
  const header = process.report?.getReport?.().header;
  return header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

/** The newest file under the native sources: { file, mtimeMs }, or undefined when there is none. */
function newestSource(root) {
  let newest;
  const visit = (rel) => {
    if (NOT_BUILT.has(rel)) return;
    const abs = path.join(root, rel);
    let st;
    try {
      st = fs.statSync(abs);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const e of fs.readdirSync(abs)) visit(path.posix.join(rel, e));
    } else if (!newest || st.mtimeMs > newest.mtimeMs) {
      newest = { file: rel, mtimeMs: st.mtimeMs };
    }
  };
  for (const s of SOURCES) visit(s);
  return newest;
}

/** Why `root` must not be packed now, or null when its prebuilt binary is there and current. */
export function prebuildProblem(root) {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const rel = prebuildPath(pkg.name);
  const fix = 'run `npm run build:prebuild` first (or set RINGTRAIN_PACK_WITHOUT_PREBUILD=1 for a source-only package)';
  let built;
  try {
    built = fs.statSync(path.join(root, rel));
  } catch {
    return `ringtrain: refusing to pack: no prebuilt binary ${rel} for this machine, so every user would compile the addon; ${fix}`;
  }
  const src = newestSource(root);
  if (src && src.mtimeMs > built.mtimeMs) {
    return `ringtrain: refusing to pack: the prebuilt binary ${rel} is older than ${src.file}; ${fix}`;
  }
  return null;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const problem = prebuildProblem(root);
  if (problem && process.env.RINGTRAIN_PACK_WITHOUT_PREBUILD === '1') {
    console.warn(`${problem.replace('refusing to pack', 'packing anyway (RINGTRAIN_PACK_WITHOUT_PREBUILD=1)')}`);
  } else if (problem) {
    console.error(problem);
    process.exit(1);
  }
}
