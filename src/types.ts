import type { Settings } from './settings.js';

import type { Dtype, ReduceOp } from './dtypes.js';

export type { Dtype, ReduceOp } from './dtypes.js';

/** A typed array a collective can work on in place. */
export type CollectiveView =
  | Float32Array
  | Float64Array
  | Int32Array
  | Int8Array
  | Uint8Array
  | BigInt64Array
  | Uint16Array;

export interface ReduceOptions {
  /** Default `sum`. */
  op?: ReduceOp;
  /** Needed only for a Uint16Array view: `float16` or `bfloat16`. */
  dtype?: Dtype;
}

/** Options of a point-to-point message. */
export interface P2pOptions {
  /** Integer, 0 <= tag < 2^31; default 0. Messages between a pair of ranks match in order per tag. */
  tag?: number;
  /** Needed only for a Uint16Array view: `float16` or `bfloat16`. */
  dtype?: Dtype;
}

/** Where a rank lives, as told to every other rank at rendezvous. */
export interface PeerInfo {
  rank: number;
  /** Address the rank's ring listener is bound to and advertised on. */
  host: string;
  port: number;
  hostname: string;
  /**
   * The machine the rank runs on (kernel boot id, IPC and network namespace; see host-identity):
   * ranks with equal hostId share a machine. Local ranks are counted by it.
   */
  hostId: string;
  localRank: number;
  pid: number;
}

export interface Communicator {
  readonly rank: number;
  readonly size: number;
  readonly localRank: number;
  readonly localSize: number;
  /** Every rank's address, in rank order. */
  readonly peers: readonly PeerInfo[];
  /** The effective tuning settings this communicator runs with (see src/settings.ts). */
  readonly settings: Readonly<Settings>;
  /** True once closed, by `close()` or by a failed collective. */
  readonly closed: boolean;
  /** Reduces `view` across all ranks in place and resolves to the same view. */
  allreduce<T extends CollectiveView>(view: T, options?: ReduceOptions): Promise<T>;
  /** As `allreduce`, but blocks the calling thread until done (for synchronous hooks such as tfjs' applyGradients). */
  allreduceSync<T extends CollectiveView>(view: T, options?: ReduceOptions): T;
  /**
   * All-reduce of `count` elements in GPU memory at `ptr` (e.g. a DeviceBuffer's ptr), in place.
   * Chunks are staged through pinned host memory and pipelined with the ring transfer.
   */
  allreduceDevice(ptr: bigint, count: number, dtype: Dtype, op?: ReduceOp): Promise<void>;
  /** Copies `root`'s `view` into every rank's `view`. */
  broadcast<T extends CollectiveView>(view: T, root?: number, options?: { dtype?: Dtype }): Promise<T>;
  /**
   * Every rank's view in rank order, `size * view.length` elements: a new array, or `out` (same
   * type, exactly that length) when given, so a loop need not allocate one per call.
   */
  allgather<T extends CollectiveView>(view: T, options?: { dtype?: Dtype; out?: T }): Promise<T>;
  /**
   * Reduces `view` (length L, the same on every rank) across ranks and returns a new array with this
   * rank's share of the result: shares are contiguous, in rank order, as even as possible (the first
   * L mod size ranks hold one element more; with L < size the others get an empty array). `view` is
   * left unchanged.
   */
  reducescatter<T extends CollectiveView>(view: T, options?: ReduceOptions): Promise<T>;
  /** Resolves on every rank only once every rank has entered it. */
  barrier(): Promise<void>;
  /**
   * Sends `view` to rank `dst`. Resolves once the matching `recv` on `dst` has the data; messages of
   * at most 64 KiB may resolve as soon as they are on their way (eager). Keep `view` unchanged until then.
   */
  send(view: CollectiveView, dst: number, options?: P2pOptions): Promise<void>;
  /**
   * Receives the next message from rank `src` with this tag into `view` and resolves to `view`.
   * Length and dtype must equal the send's (else ERR_RINGTRAIN_MISMATCH on both ranks).
   */
  recv<T extends CollectiveView>(view: T, src: number, options?: P2pOptions): Promise<T>;
  /** Sends `sendView` to `dst` and receives into `recvView` from `src`, both at once (never deadlocks); resolves to `recvView`. */
  sendrecv<T extends CollectiveView>(sendView: CollectiveView, dst: number, recvView: T, src: number, options?: P2pOptions): Promise<T>;
  /** As `send`, blocking the calling thread until the send completed. */
  sendSync(view: CollectiveView, dst: number, options?: P2pOptions): void;
  /** As `recv`, blocking the calling thread. */
  recvSync<T extends CollectiveView>(view: T, src: number, options?: P2pOptions): T;
  /** As `sendrecv`, blocking the calling thread. */
  sendrecvSync<T extends CollectiveView>(sendView: CollectiveView, dst: number, recvView: T, src: number, options?: P2pOptions): T;
  /**
   * MPI_Comm_split: every rank calls it (in the same order as its other collectives); ranks with the
   * same `color` form a new communicator, ordered by (`key`, rank), default key = rank. A negative
   * color gives null. The new communicator has its own sequence of calls, runs concurrently with this
   * one and its siblings, and is closed with this one.
   */
  split(color: number, key?: number): Promise<Communicator | null>;
  /** Idempotent; joins the native threads. */
  close(): Promise<void>;
}

/**
 * Options of init(). The tuning settings (timeoutMs, segmentBytes, smallBytes, pieceBytes, spinUs,
 * stallWarningMs, fusionBytes, pipelineBytes) are in src/settings.ts with their variables and
 * defaults; an option wins over its RINGTRAIN_* variable. smallBytes, segmentBytes and pieceBytes
 * are job-wide: every rank must use the same value (the rendezvous refuses a job that does not).
 */
export interface InitOptions extends Partial<Settings> {
  rank?: number;
  size?: number;
  localRank?: number;
  localSize?: number;
  /** host:port of the rendezvous. Rank 0 serves it when no launcher does. */
  addr?: string;
  /** Network interface to bind and advertise on (e.g. eth0). */
  iface?: string;
  /** Shared job secret; connections prove they know it (HMAC challenge-response). */
  token?: string;
  /** Every port ringtrain opens lies in [min, max]. */
  portRange?: readonly [number, number];
  /** Environment to read the rank contract from; default process.env. */
  env?: NodeJS.ProcessEnv;
}
