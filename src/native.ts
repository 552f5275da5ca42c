/**
 * The one typed boundary to the native addon. Everything the addon exports is declared here and
 * nowhere else; the rest of the package talks to these interfaces.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RingtrainError } from './errors.js';
import type { Settings } from './settings.js';

/** Steady-clock microseconds recorded by the worker thread for one operation. */
export interface NativeTiming {
  seq: number;
  submittedUs: number;
  startUs: number;
  /** When the left neighbour's matching header arrived (0 for a world of one). */
  headerUs: number;
  /** All-reduce only: when the reduce-scatter phase ended. */
  reduceScatterUs: number;
  endUs: number;
}

/** The settings the native core runs with (src/settings.ts); the core has no defaults of its own. */
export type NativeTuning = Pick<Settings, 'timeoutMs' | 'stallWarningMs' | 'segmentBytes' | 'smallBytes' | 'pieceBytes' | 'spinUs'>;

export function nativeTuning(s: Readonly<Settings>): NativeTuning {
  return {
    timeoutMs: s.timeoutMs,
    stallWarningMs: s.stallWarningMs,
    segmentBytes: s.segmentBytes,
    smallBytes: s.smallBytes,
    pieceBytes: s.pieceBytes,
    spinUs: s.spinUs,
  };
}

export interface NativeCommunicatorOptions extends NativeTuning {
  rank: number;
  size: number;
  token: string;
  /** Numeric address to listen on. */
  bindHost: string;
  /** Resolve operations with their NativeTiming (for the timeline); otherwise with undefined. */
  timing?: boolean;
  portMin?: number;
  portMax?: number;
}

/** A sub-communicator of `parent` (split): its id in the job, its members (parent ranks, in order) and this rank's index. */
export interface NativeSplitOptions {
  parent: NativeCommunicator;
  commId: number;
  members: readonly number[];
  index: number;
}

export interface NativePeer {
  host: string;
  port: number;
  hostname: string;
}

export type NativeView = ArrayBufferView & { readonly length: number };

export interface NativeCommunicator {
  readonly port: number;
  connect(peers: readonly NativePeer[]): Promise<void>;
  allreduce(view: NativeView, dtype: number, op: number): Promise<NativeTiming | undefined>;
  allreduceSync(view: NativeView, dtype: number, op: number): NativeTiming | undefined;
  allreduceDevice(ptr: bigint, count: number, dtype: number, op: number): Promise<NativeTiming | undefined>;
  broadcast(view: NativeView, dtype: number, root: number): Promise<NativeTiming | undefined>;
  allgather(src: NativeView, dst: NativeView, dtype: number): Promise<NativeTiming | undefined>;
  barrier(): Promise<NativeTiming | undefined>;
  /** `dst` holds this rank's share of `src`'s length (see shareOf in communicator.ts). */
  reducescatter(src: NativeView, dst: NativeView, dtype: number, op: number): Promise<NativeTiming | undefined>;
  close(): Promise<void>;
  /** Point-to-point (peer: the other rank; tag: 0 <= tag < 2^31). */
  send(view: NativeView, dtype: number, peer: number, tag: number): Promise<void>;
  recv(view: NativeView, dtype: number, peer: number, tag: number): Promise<void>;
  sendSync(view: NativeView, dtype: number, peer: number, tag: number): void;
  recvSync(view: NativeView, dtype: number, peer: number, tag: number): void;
  sendrecvSync(
    sendView: NativeView, sendDtype: number, dst: number, sendTag: number,
    recvView: NativeView, recvDtype: number, src: number, recvTag: number,
  ): void;
}

export interface NativeBuildInfo {
  cuda: boolean;
  napiVersion: number;
  buildSystem?: string;
}

/** One GPU the CUDA runtime sees (ringtrain::cuda::GpuInfo). */
export interface NativeGpuInfo {
  index: number;
  name: string;
  ccMajor: number;
  ccMinor: number;
  multiprocessors: number;
  /** Bytes. */
  totalMemory: number;
  pciBusId: string;
  /** 'sass' | 'ptx-jit' | 'unsupported': how this binary's code runs on the GPU. */
  codePath: string;
}

/** ringtrain::cuda::probe() (native/cuda/device_api.h); versions as CUDART_VERSION-style integers (13000 = 13.0). */
export interface NativeCudaInfo {
  builtWithCuda: boolean;
  buildCudaVersion: number;
  runtimeVersion: number;
  /** 0 when no NVIDIA driver is installed. */
  driverVersion: number;
  /** What the binary embeds, e.g. "sm_75 sm_80 ... sm_90 compute_90". */
  architectures: string;
  gpus: NativeGpuInfo[];
  /** Empty when at least one GPU is usable; otherwise why none is. */
  unavailableReason: string;
  /** ringtrain::cuda::describe(): the same facts as text. */
  description?: string;
}

export interface NativeDeviceBuffer {
  readonly ptr: bigint;
  readonly byteLength: number;
  upload(view: ArrayBufferView): void;
  download<T extends ArrayBufferView>(view: T): T;
  free(): void;
}

interface NativeBinding {
  NativeCommunicator: new (options: NativeCommunicatorOptions | NativeSplitOptions) => NativeCommunicator;
  NativeDeviceBuffer: new (byteLength: number) => NativeDeviceBuffer;
  buildInfo: NativeBuildInfo;
  wireCodes: NativeWireCodes;
  /** Queries the CUDA driver on each call; never throws. Older builds lack it: test with typeof. */
  cudaInfo?: () => NativeCudaInfo;
}

export { DTYPE_CODES, OP_CODES } from './dtypes.js';

/** The addon's own table of wire codes and element sizes (native/src/core/dtype.h), for checking ours. */
export interface NativeWireCodes {
  dtypes: Record<string, { code: number; bytes: number }>;
  ops: Record<string, number>;
}

/** The package root (holds prebuilds/ and build/). */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

let binding: NativeBinding | undefined;

/** Loads the addon on first use: a prebuilt binary for this platform, else the local build. */
export function loadNative(): NativeBinding {
  if (binding) return binding;
  const require = createRequire(import.meta.url);
  const load = require('node-gyp-build') as (dir: string) => unknown;
  try {
    binding = load(PACKAGE_ROOT) as NativeBinding;
  } catch (e) {
    throw new RingtrainError(
      'ERR_RINGTRAIN_INTERNAL',
      `ringtrain: the native addon could not be loaded (${(e as Error).message}). ` +
        'Reinstall the package, or build it with `npm run build:native` (needs cmake and a C++17 compiler).',
    );
  }
  return binding;
}

/** Converts an error thrown or rejected by the addon into a RingtrainError, keeping its code. */
export function fromNativeError(e: unknown): RingtrainError {
  if (e instanceof RingtrainError) return e;
  const err = e as { code?: unknown; message?: unknown };
  const code = typeof err.code === 'string' && err.code.startsWith('ERR_RINGTRAIN_') ? err.code : 'ERR_RINGTRAIN_INTERNAL';
  const message = typeof err.message === 'string' ? err.message : String(e);
  return new RingtrainError(code as RingtrainError['code'], message.startsWith('ringtrain:') ? message : `ringtrain: ${message}`);
}
