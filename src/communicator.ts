import { REDUCE_OPS } from './dtypes.js';
import { RingtrainError } from './errors.js';
import { DTYPE_CODES, OP_CODES, fromNativeError, loadNative, type NativeCommunicator, type NativeTiming, type NativeView } from './native.js';
import type { Settings } from './settings.js';
import type { CollectiveView, Communicator, Dtype, P2pOptions, PeerInfo, ReduceOp, ReduceOptions } from './types.js';

/** Called after every collective with what the worker thread measured (used by the timeline). */
export type OperationObserver = (event: { kind: string; dtype: Dtype; bytes: number; op?: ReduceOp; timing: NativeTiming }) => void;

/** Calls into the addon; what it throws synchronously (argument checks) becomes a RingtrainError. */
function native<T>(call: () => T): T {
  try {
    return call();
  } catch (e) {
    throw fromNativeError(e);
  }
}

/** The dtype a view carries: from its class, or from options for the 16-bit float types. */
export function dtypeOf(view: CollectiveView, requested?: Dtype): Dtype {
  let natural: Dtype | undefined;
  if (view instanceof Float32Array) natural = 'float32';
  else if (view instanceof Float64Array) natural = 'float64';
  else if (view instanceof Int32Array) natural = 'int32';
  else if (view instanceof Int8Array) natural = 'int8';
  else if (view instanceof Uint8Array) natural = 'uint8';
  else if (view instanceof BigInt64Array) natural = 'int64';
  else if (view instanceof Uint16Array) {
    if (requested === 'float16' || requested === 'bfloat16') return requested;
    throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', "ringtrain: a Uint16Array carries 16-bit floats: pass { dtype: 'float16' } or { dtype: 'bfloat16' }");
  }
  if (natural === undefined) {
    const name = (view as object)?.constructor?.name ?? typeof view;
    throw new RingtrainError(
      'ERR_RINGTRAIN_ARGUMENT',
      `ringtrain: ${name} is not supported; use Float32Array, Float64Array, Int32Array, Int8Array, Uint8Array, BigInt64Array or Uint16Array (float16/bfloat16)`,
    );
  }
  if (requested !== undefined && requested !== natural) {
    throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: a ${view.constructor.name} carries ${natural}, not ${requested}`);
  }
  return natural;
}

/** Where rank `rank`'s share of `length` elements starts and how long it is (reducescatter's layout). */
export function shareOf(length: number, size: number, rank: number): { offset: number; length: number } {
  const base = Math.floor(length / size), rem = length % size;
  return { offset: rank * base + Math.min(rank, rem), length: base + (rank < rem ? 1 : 0) };
}

/** A rank's handle on its job: the ring, and the collectives that run over it. */
export class RingCommunicator implements Communicator {
  readonly rank: number;
  readonly size: number;
  readonly localRank: number;
  readonly localSize: number;
  readonly peers: readonly PeerInfo[];
  readonly settings: Readonly<Settings>;
  private closing: Promise<void> | undefined;
  private failed = false;
  /** Sub-communicators made by split(); closed before this one. */
  private readonly children: RingCommunicator[] = [];
  /** The top-level communicator: it hands out communicator ids (see split). */
  private root: RingCommunicator = this;
  /** Top level only: the lowest communicator id no communicator of this rank has used (0 is the top level's). */
  private nextCommId = 1;

  constructor(
    private readonly nativeComm: NativeCommunicator,
    info: { rank: number; size: number; localRank: number; localSize: number; peers: readonly PeerInfo[]; settings: Settings },
    private readonly observer?: OperationObserver,
  ) {
    this.rank = info.rank;
    this.size = info.size;
    this.localRank = info.localRank;
    this.localSize = info.localSize;
    this.peers = info.peers;
    this.settings = Object.freeze({ ...info.settings });
  }

  get closed(): boolean {
    return this.closing !== undefined || this.failed;
  }

  private checkOpen(what: string): void {
    if (this.closing) throw new RingtrainError('ERR_RINGTRAIN_CLOSED', `ringtrain: ${what} on a closed communicator`);
  }

  private reduceOp(options?: ReduceOptions): ReduceOp {
    const op = options?.op ?? 'sum';
    if (!REDUCE_OPS.includes(op)) {
      throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: unknown op '${String(op)}'; use one of ${REDUCE_OPS.join(', ')}`);
    }
    return op;
  }

  /**
   * The one rule for which errors close the communicator: an error found before anything was sent
   * (this file's argument checks, the addon's, which mark theirs `beforeSend`) leaves it usable;
   * any other (whatever the worker thread met while running the call, whatever its code) closes
   * it, as the native side has then aborted the ring.
   */
  private failedWith(e: unknown): RingtrainError {
    if ((e as { beforeSend?: unknown } | null)?.beforeSend !== true) this.failed = true;
    return fromNativeError(e);
  }

  private async track<T>(promise: Promise<NativeTiming | undefined>, kind: string, dtype: Dtype, bytes: number, result: T, op?: ReduceOp): Promise<T> {
    try {
      const timing = await promise;
      if (timing) this.observer?.({ kind, dtype, bytes, op, timing });
      return result;
    } catch (e) {
      throw this.failedWith(e);
    }
  }

  async allreduce<T extends CollectiveView>(view: T, options?: ReduceOptions): Promise<T> {
    this.checkOpen('allreduce');
    const dtype = dtypeOf(view, options?.dtype);
    const op = this.reduceOp(options);
    const p = native(() => this.nativeComm.allreduce(view as NativeView, DTYPE_CODES[dtype], OP_CODES[op]));
    return this.track(p, 'allreduce', dtype, view.byteLength, view, op);
  }

  allreduceSync<T extends CollectiveView>(view: T, options?: ReduceOptions): T {
    this.checkOpen('allreduceSync');
    const dtype = dtypeOf(view, options?.dtype);
    const op = this.reduceOp(options);
    let timing: NativeTiming | undefined;
    try {
      timing = this.nativeComm.allreduceSync(view as NativeView, DTYPE_CODES[dtype], OP_CODES[op]);
    } catch (e) {
      throw this.failedWith(e);
    }
    if (timing) this.observer?.({ kind: 'allreduce', dtype, bytes: view.byteLength, op, timing });
    return view;
  }

  async allreduceDevice(ptr: bigint, count: number, dtype: Dtype, op: ReduceOp = 'sum'): Promise<void> {
    this.checkOpen('allreduceDevice');
    if (!Number.isSafeInteger(count) || count < 0) throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: count must be an integer >= 0, got ${count}`);
    if (!(dtype in DTYPE_CODES)) throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: unknown dtype '${String(dtype)}'`);
    const reduce = this.reduceOp({ op });
    const p = native(() => this.nativeComm.allreduceDevice(ptr, count, DTYPE_CODES[dtype], OP_CODES[reduce]));
    await this.track(p, 'allreduceDevice', dtype, count, undefined, reduce);
  }

  async broadcast<T extends CollectiveView>(view: T, root = 0, options?: { dtype?: Dtype }): Promise<T> {
    this.checkOpen('broadcast');
    if (!Number.isInteger(root) || root < 0 || root >= this.size) {
      throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: broadcast root ${root} is not a rank of this world (0..${this.size - 1})`);
    }
    const dtype = dtypeOf(view, options?.dtype);
    const p = native(() => this.nativeComm.broadcast(view as NativeView, DTYPE_CODES[dtype], root));
    return this.track(p, 'broadcast', dtype, view.byteLength, view);
  }

  async allgather<T extends CollectiveView>(view: T, options?: { dtype?: Dtype; out?: T }): Promise<T> {
    this.checkOpen('allgather');
    const dtype = dtypeOf(view, options?.dtype);
    const Ctor = view.constructor as new (length: number) => T;
    const given = options?.out;
    if (given !== undefined && (given.constructor !== Ctor || given.length !== view.length * this.size)) {
      throw new RingtrainError(
        'ERR_RINGTRAIN_ARGUMENT',
        `ringtrain: allgather out must be a ${Ctor.name} of ${view.length * this.size} elements (size x view), got a ${(given as object).constructor?.name} of ${(given as CollectiveView).length}`,
      );
    }
    const out = given ?? new Ctor(view.length * this.size);
    const p = native(() => this.nativeComm.allgather(view as NativeView, out as NativeView, DTYPE_CODES[dtype]));
    return this.track(p, 'allgather', dtype, view.byteLength, out);
  }

  async reducescatter<T extends CollectiveView>(view: T, options?: ReduceOptions): Promise<T> {
    this.checkOpen('reducescatter');
    const dtype = dtypeOf(view, options?.dtype);
    const op = this.reduceOp(options);
    const Ctor = view.constructor as new (length: number) => T;
    const out = new Ctor(shareOf(view.length, this.size, this.rank).length);
    const p = native(() => this.nativeComm.reducescatter(view as NativeView, out as NativeView, DTYPE_CODES[dtype], OP_CODES[op]));
    return this.track(p, 'reducescatter', dtype, view.byteLength, out, op);
  }

  async barrier(): Promise<void> {
    this.checkOpen('barrier');
    await this.track(native(() => this.nativeComm.barrier()), 'barrier', 'uint8', 0, undefined);
  }

  /** Checks a point-to-point call's arguments before anything is sent. */
  private p2pArgs(what: string, view: CollectiveView, peer: number, options?: P2pOptions): { dtype: number; tag: number } {
    this.checkOpen(what);
    const role = what.startsWith('recv') ? 'src' : 'dst';
    if (!Number.isInteger(peer) || peer < 0 || peer >= this.size || peer === this.rank) {
      throw new RingtrainError(
        'ERR_RINGTRAIN_ARGUMENT',
        `ringtrain: ${what}: ${role} ${String(peer)} is not another rank of this communicator (ranks 0..${this.size - 1}, this is rank ${this.rank})`,
      );
    }
    const tag = options?.tag ?? 0;
    if (!Number.isInteger(tag) || tag < 0 || tag >= 2 ** 31) {
      throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: ${what}: tag must be an integer with 0 <= tag < 2^31, got ${String(tag)}`);
    }
    return { dtype: DTYPE_CODES[dtypeOf(view, options?.dtype)], tag };
  }

  private async p2p<T>(promise: Promise<void>, result: T): Promise<T> {
    try {
      await promise;
      return result;
    } catch (e) {
      throw fromNativeError(e);
    }
  }

  private p2pSync<T>(run: () => void, result: T): T {
    try {
      run();
    } catch (e) {
      throw fromNativeError(e);
    }
    return result;
  }

  async send(view: CollectiveView, dst: number, options?: P2pOptions): Promise<void> {
    const a = this.p2pArgs('send', view, dst, options);
    return this.p2p(native(() => this.nativeComm.send(view as NativeView, a.dtype, dst, a.tag)), undefined);
  }

  async recv<T extends CollectiveView>(view: T, src: number, options?: P2pOptions): Promise<T> {
    const a = this.p2pArgs('recv', view, src, options);
    return this.p2p(native(() => this.nativeComm.recv(view as NativeView, a.dtype, src, a.tag)), view);
  }

  async sendrecv<T extends CollectiveView>(sendView: CollectiveView, dst: number, recvView: T, src: number, options?: P2pOptions): Promise<T> {
    const s = this.p2pArgs('sendrecv', sendView, dst, options);
    const r = this.p2pArgs('sendrecv', recvView, src, options);
    const sent = native(() => this.nativeComm.send(sendView as NativeView, s.dtype, dst, s.tag));
    const received = native(() => this.nativeComm.recv(recvView as NativeView, r.dtype, src, r.tag));
    // Both settle (no unhandled rejection); the first failure is reported.
    const [a, b] = await Promise.allSettled([sent, received]);
    if (a.status === 'rejected') throw fromNativeError(a.reason);
    if (b.status === 'rejected') throw fromNativeError(b.reason);
    return recvView;
  }

  sendSync(view: CollectiveView, dst: number, options?: P2pOptions): void {
    const a = this.p2pArgs('sendSync', view, dst, options);
    this.p2pSync(() => this.nativeComm.sendSync(view as NativeView, a.dtype, dst, a.tag), undefined);
  }

  recvSync<T extends CollectiveView>(view: T, src: number, options?: P2pOptions): T {
    const a = this.p2pArgs('recvSync', view, src, options);
    return this.p2pSync(() => this.nativeComm.recvSync(view as NativeView, a.dtype, src, a.tag), view);
  }

  sendrecvSync<T extends CollectiveView>(sendView: CollectiveView, dst: number, recvView: T, src: number, options?: P2pOptions): T {
    const s = this.p2pArgs('sendrecvSync', sendView, dst, options);
    const r = this.p2pArgs('sendrecvSync', recvView, src, options);
    return this.p2pSync(
      () => this.nativeComm.sendrecvSync(sendView as NativeView, s.dtype, dst, s.tag, recvView as NativeView, r.dtype, src, r.tag),
      recvView,
    );
  }

  async split(color: number, key: number = this.rank): Promise<Communicator | null> {
    this.checkOpen('split');
    for (const [name, v] of [['color', color], ['key', key]] as const) {
      if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) {
        throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `ringtrain: split: ${name} must be a 32-bit integer, got ${String(v)}`);
      }
    }
    // One all-gather tells every rank every (color, key) and every rank's next free communicator id.
    // The groups take ids above all of them, so no two communicators sharing a member ever share an
    // id (their messages meet on the same links), without any central allocator.
    const all = await this.allgather(new Int32Array([color, key, this.root.nextCommId]));
    let base = 0;
    const colors = new Set<number>();
    for (let r = 0; r < this.size; r++) {
      base = Math.max(base, all[3 * r + 2]!);
      if (all[3 * r]! >= 0) colors.add(all[3 * r]!);
    }
    const sorted = [...colors].sort((a, b) => a - b);
    this.root.nextCommId = base + sorted.length;
    if (color < 0) return null;
    const commId = base + sorted.indexOf(color);
    if (commId >= 0x8000) throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', 'ringtrain: split: a job has at most 32767 communicators');
    const members: number[] = [];
    for (let r = 0; r < this.size; r++) if (all[3 * r] === color) members.push(r);
    members.sort((a, b) => all[3 * a + 1]! - all[3 * b + 1]! || a - b);
    const index = members.indexOf(this.rank);
    let native: NativeCommunicator;
    try {
      native = new (loadNative().NativeCommunicator)({ parent: this.nativeComm, commId, members, index });
    } catch (e) {
      throw fromNativeError(e);
    }
    const me = this.peers[this.rank]!;
    const sameHost = (p: PeerInfo) => (p.hostId && me.hostId ? p.hostId === me.hostId : p.hostname === me.hostname);
    const peers = members.map((m, i) => ({ ...this.peers[m]!, rank: i }));
    const local = peers.filter(sameHost);
    const sub = new RingCommunicator(
      native,
      { rank: index, size: members.length, localRank: local.findIndex((p) => p.rank === index), localSize: local.length, peers, settings: this.settings },
      this.observer,
    );
    sub.root = this.root;
    this.children.push(sub);
    return sub;
  }

  close(): Promise<void> {
    this.closing ??= Promise.allSettled(this.children.map((c) => c.close()))
      .then(() => this.nativeComm.close())
      .catch((e: unknown) => {
        throw fromNativeError(e);
      });
    return this.closing;
  }
}
