/**
 * The CUDA data path (native/cuda) as built by cmake/cuda.cmake: the kernels' thread code checked
 * on the CPU, the GPU tests (which pass on a GPU and, without one, skip saying why), the CPU-only
 * build's error reporting, and the RINGTRAIN_CUDA option. Builds into build/cuda-tests*, apart from
 * the addon's build/ so that it never races an `npm run build:native`.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers/processes.js';

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const gpuListed = has('nvidia-smi') && /^GPU /m.test(spawnSync('nvidia-smi', ['-L']).stdout?.toString() ?? '');
const haveNvcc = has('nvcc') || fs.existsSync('/usr/local/cuda/bin/nvcc');

/** Runs a command without blocking the event loop (vitest's worker must keep answering). */
function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 240_000) {
  return new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

async function configureAndBuild(dir: string, defs: string[], targets: string[]): Promise<void> {
  const conf = await exec('cmake', ['-S', ROOT, '-B', dir, '-DCMAKE_BUILD_TYPE=Release', ...defs]);
  if (conf.code !== 0) throw new Error(`configure ${dir} failed:\n${conf.out}`);
  const build = await exec('cmake', ['--build', dir, '--parallel', '2', '--target', ...targets]);
  if (build.code !== 0) throw new Error(`build ${dir} failed:\n${build.out.slice(-8000)}`);
}

const run = (bin: string) => exec(bin, [], process.env, 120_000);

describe('CUDA data path', () => {
  const cudaDir = path.join(ROOT, 'build/cuda-tests');
  const cpuDir = path.join(ROOT, 'build/cuda-tests-cpu');

  describe.runIf(haveNvcc)('CUDA build', () => {
    beforeAll(async () => {
      // Only what the tests run needs compiling here: the GPU's own architecture when there is one,
      // else Hopper alone (npm ci's addon build compiles the full architecture list).
      const arch = gpuListed ? 'native' : '90-real';
      await configureAndBuild(cudaDir, ['-DRINGTRAIN_CUDA=ON', `-DCMAKE_CUDA_ARCHITECTURES=${arch}`], [
        'ringtrain_cuda_logic_test',
        'ringtrain_cuda_test',
      ]);
    }, 300_000);

    it("runs every kernel thread's code on the CPU and matches the reference for all dtypes, ops, sizes and alignments", async () => {
      const r = await run(path.join(cudaDir, 'ringtrain_cuda_logic_test'));
      expect(r.out).toMatch(/^PASS: \d+ checks$/m);
      expect(r.code).toBe(0);
    });

    it('passes the GPU tests on a GPU, and without one skips them printing the reason', async () => {
      const r = await run(path.join(cudaDir, 'ringtrain_cuda_test'));
      expect(r.code, r.out).toBe(0);
      if (gpuListed) {
        expect(r.out).toMatch(/^PASS: \d+ checks$/m);
      } else {
        expect(r.out).toMatch(/^SKIP: no CUDA device \((no GPU present|NVIDIA driver too old|no GPU usable)[^)]*/m);
        expect(r.out).toMatch(/^build: CUDA \d+\.\d+ .*code for sm_90/m);
      }
    });
  });

  describe('CPU-only build', () => {
    beforeAll(() => configureAndBuild(cpuDir, ['-DRINGTRAIN_CUDA=OFF'], ['ringtrain_cuda_test']), 300_000);

    it('answers every device call with "built without CUDA" and skips the GPU tests saying so', async () => {
      const r = await run(path.join(cpuDir, 'ringtrain_cuda_test'));
      expect(r.code, r.out).toBe(0);
      expect(r.out).toMatch(/^build: CPU only \(no CUDA\)$/m);
      expect(r.out).toMatch(/^SKIP: no CUDA device \(ringtrain was built without CUDA/m);
      const cache = fs.readFileSync(path.join(cpuDir, 'CMakeCache.txt'), 'utf8');
      expect(cache).toMatch(/^RINGTRAIN_CUDA:STRING=OFF$/m);
    });
  });

  describe('RINGTRAIN_CUDA option', () => {
    const noNvccPath = (process.env.PATH ?? '')
      .split(':')
      .filter((d) => d && !fs.existsSync(path.join(d, 'nvcc')))
      .join(':');
    const scratch = path.join(ROOT, 'build/cuda-tests-option');

    it('refuses to configure with RINGTRAIN_CUDA=ON when no CUDA compiler is found, saying what to do', async () => {
      fs.rmSync(scratch, { recursive: true, force: true });
      const env = { ...process.env, PATH: noNvccPath, CUDACXX: '' };
      delete env.CUDACXX;
      const r = await exec('cmake', ['-S', ROOT, '-B', scratch, '-DRINGTRAIN_CUDA=ON'], env, 60_000);
      expect(r.code).not.toBe(0);
      expect(r.out).toMatch(/RINGTRAIN_CUDA=ON but no CUDA compiler was found/);
    });

    it('rejects a value other than AUTO, ON or OFF', async () => {
      fs.rmSync(scratch, { recursive: true, force: true });
      const r = await exec('cmake', ['-S', ROOT, '-B', scratch, '-DRINGTRAIN_CUDA=maybe'], { ...process.env, PATH: noNvccPath }, 60_000);
      expect(r.code).not.toBe(0);
      expect(r.out).toMatch(/RINGTRAIN_CUDA must be AUTO, ON or OFF, not 'maybe'/);
      fs.rmSync(scratch, { recursive: true, force: true });
    });
  });
});

