// The native source lists live in four build files (CMakeLists.txt, binding.gyp,
// native/test/CMakeLists.txt, package.json `files`): CMakeLists.txt's core list is the reference,
// and this test fails when another file names a different set or a core file is left out.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string): string => fs.readFileSync(path.join(ROOT, file), 'utf8');
const sorted = (xs: Iterable<string>): string[] => [...new Set(xs)].sort();

function cmakeList(text: string, name: string): string[] {
  const m = new RegExp(`set\\(${name}\\s+([^)]*)\\)`).exec(text);
  if (!m) throw new Error(`no set(${name} ...) in CMakeLists.txt`);
  return m[1]!.split(/\s+/).filter((s) => s.endsWith('.cpp'));
}

function addonList(text: string): string[] {
  const m = /add_library\(ringtrain SHARED\s+([^)]*)\)/.exec(text);
  if (!m) throw new Error('no add_library(ringtrain SHARED ...) in CMakeLists.txt');
  return m[1]!.split(/\s+/).filter((s) => s.endsWith('.cpp'));
}

/** A `files` pattern as package.json uses them here: a path, a folder/, or a ** / * glob. */
function matches(pattern: string, file: string): boolean {
  if (pattern.endsWith('/')) return file.startsWith(pattern);
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*\//g, '(?:.*/)?').replace(/\*/g, '[^/]*');
  return new RegExp(`^${re}$`).test(file);
}

describe('native source lists agree across the build files', () => {
  const cmake = read('CMakeLists.txt');
  const core = cmakeList(cmake, 'RINGTRAIN_CORE_SOURCES');
  const gyp = JSON.parse(read('binding.gyp')) as { targets: { sources: string[] }[] };
  const gypSources = gyp.targets[0]!.sources;

  it("CMakeLists.txt's core list is every .cpp in native/src/core", () => {
    const onDisk = fs.readdirSync(path.join(ROOT, 'native/src/core')).filter((f) => f.endsWith('.cpp')).map((f) => `native/src/core/${f}`);
    expect(sorted(core)).toEqual(sorted(onDisk));
  });

  it('binding.gyp builds the same core and addon files as CMakeLists.txt', () => {
    expect(sorted(gypSources.filter((s) => s.startsWith('native/src/core/')))).toEqual(sorted(core));
    expect(sorted(gypSources.filter((s) => s.startsWith('native/src/addon/')))).toEqual(sorted(addonList(cmake)));
  });

  it('the native tests compile only core files that exist in the core list', () => {
    const named = [...read('native/test/CMakeLists.txt').matchAll(/\$\{RT_CORE\}\/([\w.]+\.cpp)/g)].map((m) => `native/src/core/${m[1]}`);
    expect(named.length).toBeGreaterThan(0);
    for (const file of named) expect(core, file).toContain(file);
  });

  it("package.json `files` ships every source binding.gyp compiles, and binding.gyp itself", () => {
    const files = (JSON.parse(read('package.json')) as { files: string[] }).files;
    for (const source of [...gypSources, 'binding.gyp']) {
      expect(files.some((p) => matches(p, source)), `${source} is not in package.json files`).toBe(true);
    }
    // The headers the sources include ship too.
    for (const dir of ['native/src/core', 'native/src/addon']) {
      for (const h of fs.readdirSync(path.join(ROOT, dir)).filter((f) => f.endsWith('.h'))) {
        expect(files.some((p) => matches(p, `${dir}/${h}`)), `${dir}/${h}`).toBe(true);
      }
    }
  });
});
