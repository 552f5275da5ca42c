/**
 * What this installation of ringtrain is: its version, the Node.js running it, and which native
 * addon loads (prebuilt or compiled here, CPU or CUDA, GPUs seen). `ringtrain info` prints it; the
 * doctor's agent reports it from every host.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadNative, PACKAGE_ROOT, type NativeCudaInfo } from './native.js';

export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** What `ringtrain info` reports; also its --json output. */
export interface InstallationInfo {
  ringtrain: string;
  node: string;
  /** The N-API version this Node.js offers (the addon needs its own napiVersion or newer). */
  nodeNapiVersion: number;
  platform: string;
  arch: string;
  addon: {
    path: string;
    /** Loaded from prebuilds/ (shipped in the package), not compiled on this machine. */
    prebuilt: boolean;
    /** 'cmake-js' | 'node-gyp' | 'unknown': what compiled it (prebuilds are cmake-js builds). */
    buildSystem: string;
    napiVersion: number;
    cuda: boolean;
  };
  /** null when the addon was built without CUDA, or predates the cudaInfo export (see cudaNote). */
  cuda: NativeCudaInfo | null;
  cudaNote?: string;
}

export function collectInfo(): InstallationInfo {
  const binding = loadNative();
  // node-gyp-build resolves the same file loadNative() loaded: build/ first, then prebuilds/.
  const require = createRequire(import.meta.url);
  const addonPath = (require('node-gyp-build') as { path(dir: string): string }).path(PACKAGE_ROOT);
  const build = binding.buildInfo;
  const info: InstallationInfo = {
    ringtrain: packageVersion(),
    node: process.version,
    nodeNapiVersion: Number(process.versions.napi ?? 0),
    platform: process.platform,
    arch: process.arch,
    addon: {
      path: addonPath,
      prebuilt: addonPath.split(/[\\/]/).includes('prebuilds'),
      buildSystem: build.buildSystem ?? 'unknown',
      napiVersion: build.napiVersion,
      cuda: build.cuda,
    },
    cuda: null,
  };
  if (build.cuda) {
    if (typeof binding.cudaInfo === 'function') {
      try {
        info.cuda = binding.cudaInfo();
      } catch (e) {
        info.cudaNote = `the CUDA probe failed: ${(e as Error).message}`;
      }
    } else {
      info.cudaNote = 'this addon has no cudaInfo() export: CUDA runtime, driver and GPU details are not available';
    }
  }
  return info;
}
