/**
 * What the benchmark knows about each collective, one small descriptor each: what the size column
 * counts and the bus-bandwidth factor (both as nccl-tests defines them), how to run one call, and
 * how to check one call's result exactly. The sweep (sweep.ts) is the same for all of them.
 */
import { RingtrainError } from '../errors.js';
import type { CollectiveView, Communicator, Dtype, ReduceOp } from '../types.js';
import { countWrong, fillWith, makeView, pattern } from './values.js';

/** In the order `--collective all` runs them. */
export const COLLECTIVE_NAMES = ['allreduce', 'broadcast', 'allgather', 'reducescatter', 'sendrecv', 'barrier'] as const;
export type CollectiveName = (typeof COLLECTIVE_NAMES)[number];

export interface CaseParams {
  comm: Communicator;
  dtype: Dtype;
  op: ReduceOp;
  /** Elements of the buffer the size column counts (see Collective.elements). */
  elements: number;
}

/** One size of one collective, with its buffers allocated once, outside the timed loop. */
export interface CollectiveCase {
  /** Writes the inputs that wrong() expects (the check's call only; timed calls reuse whatever is there). */
  fill(): void;
  run(): Promise<void>;
  /** A blocking call, where the core has one (timed back to back in --mode sync, like an MPI loop). */
  runSync?: () => void;
  /** Elements that differ from the exact result of one run() after fill(), on this rank. */
  wrong(): number;
}

export interface Collective {
  name: CollectiveName;
  /** What the size column counts, for the report's header. */
  sizeMeans: string;
  /** Whether -o/--op applies. */
  reduces: boolean;
  /** false: time only (the barrier); one row, no sizes. */
  sized: boolean;
  /** Its timed loop can make blocking calls (CollectiveCase.runSync) in --mode sync. */
  blocking?: boolean;
  /** Also measure osu_latency / osu_bw between ranks 0 and 1 at each size (ping-pong.ts). */
  pingPong?: boolean;
  /** The root column (broadcast), or undefined. */
  root?: number;
  /** busbw = algbw * factor: the per-rank link load a bandwidth-optimal algorithm has (nccl-tests' PERFORMANCE.md). */
  busbwFactor(n: number): number;
  /** The factor as a formula of n, for the report. */
  busbwFormula: string;
  /** Elements of the size buffer for a requested size: whole elements, a multiple of n where every rank holds an equal part. */
  elements(bytes: number, elementBytes: number, n: number): number;
  /** Why this communicator cannot run it (a core without the call, too few ranks), or undefined. */
  unavailable(comm: Communicator): string | undefined;
  setup(p: CaseParams): CollectiveCase;
}

const whole = (bytes: number, elementBytes: number): number => Math.max(0, Math.floor(bytes / elementBytes));
const perRankShare = (bytes: number, elementBytes: number, n: number): number => Math.floor(whole(bytes, elementBytes) / n) * n;

/** Rank r's contribution to element i of a reduction: 0 or 1 (1 everywhere for prod), exact in every dtype and op. */
export function reduceInput(op: ReduceOp, rank: number, i: number): number {
  return op === 'prod' ? 1 : (i + rank) % 2;
}

/** The exact reduction of reduceInput over n ranks at element i. */
export function reducedValue(op: ReduceOp, dtype: Dtype, n: number, i: number): number {
  let ones = 0;
  for (let r = 0; r < n; r++) ones += reduceInput(op, r, i);
  switch (op) {
    case 'sum': return ones;
    case 'avg': return dtype.startsWith('int') || dtype === 'uint8' ? Math.trunc(ones / n) : ones / n;
    case 'min': return ones === n ? 1 : 0;
    case 'max': return ones > 0 ? 1 : 0;
    case 'prod': return 1;
  }
}

const allreduce: Collective = {
  name: 'allreduce',
  busbwFormula: '2(n-1)/n',
  sizeMeans: 'the buffer every rank reduces in place',
  reduces: true,
  sized: true,
  blocking: true,
  busbwFactor: (n) => (2 * (n - 1)) / n,
  elements: whole,
  unavailable: () => undefined,
  setup({ comm, dtype, op, elements }) {
    const view = makeView(dtype, elements);
    const options = { op, dtype };
    return {
      fill: () => fillWith(view, dtype, (i) => reduceInput(op, comm.rank, i)),
      run: async () => void (await comm.allreduce(view, options)),
      runSync: () => void comm.allreduceSync(view, options),
      wrong: () => countWrong(view, dtype, (i) => reducedValue(op, dtype, comm.size, i)),
    };
  },
};

const BROADCAST_ROOT = 0;

const broadcast: Collective = {
  name: 'broadcast',
  busbwFormula: '1',
  sizeMeans: "the root's buffer, copied to every rank",
  reduces: false,
  sized: true,
  root: BROADCAST_ROOT,
  busbwFactor: () => 1,
  elements: whole,
  unavailable: () => undefined,
  setup({ comm, dtype, elements }) {
    const view = makeView(dtype, elements);
    return {
      // Non-roots start from values the root never sends, so a skipped copy is counted.
      fill: () => fillWith(view, dtype, (i) => (comm.rank === BROADCAST_ROOT ? pattern(BROADCAST_ROOT, i) : 100 + (i % 7))),
      run: async () => void (await comm.broadcast(view, BROADCAST_ROOT, { dtype })),
      wrong: () => countWrong(view, dtype, (i) => pattern(BROADCAST_ROOT, i)),
    };
  },
};

const allgather: Collective = {
  name: 'allgather',
  busbwFormula: '(n-1)/n',
  sizeMeans: "the gathered buffer: all ranks' parts",
  reduces: false,
  sized: true,
  busbwFactor: (n) => (n - 1) / n,
  elements: perRankShare,
  unavailable: () => undefined,
  setup({ comm, dtype, elements }) {
    const part = elements / comm.size;
    const send = makeView(dtype, part);
    const out = makeView(dtype, elements);
    return {
      fill: () => {
        fillWith(send, dtype, (i) => pattern(comm.rank, i));
        fillWith(out, dtype, () => 100);
      },
      run: async () => void (await comm.allgather(send, { dtype, out })),
      wrong: () => countWrong(out, dtype, (i) => pattern(Math.floor(i / part), i % part)),
    };
  },
};

const reducescatter: Collective = {
  name: 'reducescatter',
  busbwFormula: '(n-1)/n',
  sizeMeans: "the reduced buffer: all ranks' shares",
  reduces: true,
  sized: true,
  busbwFactor: (n) => (n - 1) / n,
  elements: perRankShare,
  unavailable: () => undefined,
  setup({ comm, dtype, op, elements }) {
    const view = makeView(dtype, elements);
    const share = elements / comm.size;
    let result: CollectiveView = view.subarray(0, 0);
    return {
      fill: () => fillWith(view, dtype, (i) => reduceInput(op, comm.rank, i)),
      run: async () => void (result = await comm.reducescatter(view, { op, dtype })),
      wrong: () =>
        result.length !== share ? share : countWrong(result, dtype, (j) => reducedValue(op, dtype, comm.size, comm.rank * share + j)),
    };
  },
};

const sendrecv: Collective = {
  name: 'sendrecv',
  busbwFormula: '1',
  sizeMeans: 'the buffer each rank sends to rank+1 while receiving from rank-1',
  reduces: false,
  sized: true,
  blocking: true,
  pingPong: true,
  busbwFactor: () => 1,
  elements: whole,
  unavailable: (comm) => (comm.size < 2 ? 'sendrecv needs at least 2 ranks' : undefined),
  setup({ comm, dtype, elements }) {
    const n = comm.size;
    const next = (comm.rank + 1) % n;
    const prev = (comm.rank + n - 1) % n;
    const send = makeView(dtype, elements);
    const recv = makeView(dtype, elements);
    const options = { dtype };
    return {
      fill: () => {
        fillWith(send, dtype, (i) => pattern(comm.rank, i));
        fillWith(recv, dtype, () => 100);
      },
      run: async () => void (await comm.sendrecv(send, next, recv, prev, options)),
      runSync: () => void comm.sendrecvSync(send, next, recv, prev, options),
      wrong: () => countWrong(recv, dtype, (i) => pattern(prev, i)),
    };
  },
};

const barrier: Collective = {
  name: 'barrier',
  busbwFormula: 'none (time only)',
  sizeMeans: 'nothing (time only)',
  reduces: false,
  sized: false,
  busbwFactor: () => 0,
  elements: () => 0,
  unavailable: () => undefined,
  setup({ comm }) {
    return { fill: () => undefined, run: () => comm.barrier(), wrong: () => 0 };
  },
};

export const COLLECTIVES: Readonly<Record<CollectiveName, Collective>> = { allreduce, broadcast, allgather, reducescatter, sendrecv, barrier };

/** The collectives a --collective value names ('all': every one, in COLLECTIVE_NAMES order). */
export function collectivesFor(value: string): Collective[] {
  if (value === 'all') return COLLECTIVE_NAMES.map((n) => COLLECTIVES[n]);
  const c = (COLLECTIVES as Record<string, Collective | undefined>)[value];
  if (!c) throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `--collective ${value}: choose one of ${COLLECTIVE_NAMES.join(', ')} or all`);
  return [c];
}
