/**
 * The N-API-free core (native/src/core, libringtrain_core.a) knows no GPU: it reaches device memory
 * only through its DeviceReducer hook, which the addon fills from native/cuda.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/processes.js';

const core = path.join(ROOT, 'native/src/core');
const includes = (file: string): string[] =>
  [...fs.readFileSync(file, 'utf8').matchAll(/^#include\s+[<"]([^>"]+)[>"]/gm)].map((m) => m[1]!);

describe('the native core without CUDA', () => {
  it('includes only its own headers and the standard library, never native/cuda or CUDA', () => {
    const own = new Set(fs.readdirSync(core));
    const files = [...own].filter((f) => /\.(cpp|h)$/.test(f));
    expect(files.length).toBeGreaterThan(10);
    const foreign = files.flatMap((f) =>
      includes(path.join(core, f))
        .filter((inc) => inc.includes('.') && !own.has(inc) && !/^(sys|netinet|arpa|linux)\/|^[a-z_]+\.h$/.test(inc))
        .map((inc) => `${f}: ${inc}`),
    );
    expect(foreign).toEqual([]);
    const cudaNames = files.flatMap((f) => includes(path.join(core, f)).filter((inc) => /cuda|device_api|device_allreduce/.test(inc)));
    expect(cudaNames).toEqual([]);
  });

  it('is not linked with the CUDA library by CMake; the addon is', () => {
    const cmake = fs.readFileSync(path.join(ROOT, 'CMakeLists.txt'), 'utf8') + fs.readFileSync(path.join(ROOT, 'cmake/cuda.cmake'), 'utf8');
    expect(cmake).not.toMatch(/target_link_libraries\(\s*ringtrain_core\b[^)]*ringtrain_cuda/);
    expect(cmake).toMatch(/target_link_libraries\(\s*ringtrain\s+PRIVATE\s+ringtrain_cuda\s*\)/);
    expect(cmake).not.toMatch(/native\/src\/core\/device_allreduce/);
  });
});
