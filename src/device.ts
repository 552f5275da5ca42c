/**
 * GPU memory for collectives that take data where it lives. Needs an addon built with CUDA and a
 * usable NVIDIA GPU; otherwise every call throws ERR_RINGTRAIN_NO_GPU saying why.
 */
import { fromNativeError, loadNative, type NativeCudaInfo, type NativeDeviceBuffer } from './native.js';

export class DeviceBuffer {
  private readonly native: NativeDeviceBuffer;

  /** Allocates `byteLength` bytes on the current GPU (cudaMalloc). */
  constructor(byteLength: number) {
    try {
      this.native = new (loadNative().NativeDeviceBuffer)(byteLength);
    } catch (e) {
      throw fromNativeError(e);
    }
  }

  /** Device address, for `comm.allreduceDevice` and native interop. */
  get ptr(): bigint {
    return this.native.ptr;
  }

  get byteLength(): number {
    return this.native.byteLength;
  }

  /** Copies `view` to the start of the buffer. */
  upload(view: ArrayBufferView): void {
    try {
      this.native.upload(view);
    } catch (e) {
      throw fromNativeError(e);
    }
  }

  /** Copies the start of the buffer into `view` and returns it. */
  download<T extends ArrayBufferView>(view: T): T {
    try {
      return this.native.download(view);
    } catch (e) {
      throw fromNativeError(e);
    }
  }

  /** Frees the GPU memory now (idempotent); it is also freed when the object is collected. */
  free(): void {
    this.native.free();
  }
}

/** What this build and machine offer for CUDA (never throws). */
export function cudaInfo(): NativeCudaInfo | undefined {
  const binding = loadNative();
  return typeof binding.cudaInfo === 'function' ? binding.cudaInfo() : undefined;
}
