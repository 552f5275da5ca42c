#!/usr/bin/env node
/**
 * ringtrain-bench: one rank of the benchmark suite; rank 0 prints the report.
 *   collectives (nccl-tests style): --collective allreduce|broadcast|allgather|reducescatter|sendrecv|barrier|all
 *   training throughput and scaling efficiency: --train (see bench/train.ts)
 */
import os from 'node:os';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { COLLECTIVE_NAMES, collectivesFor, type Collective } from './bench/collectives.js';
import {
  CSV_HEADER,
  benchJson,
  formatCollectiveFooter,
  formatCollectiveHeader,
  formatCsvRow,
  formatRow,
  formatRunHeader,
  formatSkipped,
  totalErrors,
  type BenchContext,
  type CollectiveResult,
  type SkippedCollective,
} from './bench/report.js';
import { runSweep, startupWarmup, type BenchOptions } from './bench/sweep.js';
import { NO_TFJS_MESSAGE } from './bench/tfjs-loader.js';
import type { TrainBenchOptions } from './bench/train-options.js';
import { cudaInfo } from './device.js';
import { RingtrainError } from './errors.js';
import { DTYPES, REDUCE_OPS } from './dtypes.js';
import { init } from './init.js';
import { ProgressLine } from './progress.js';
import { formatSize, parseSize } from './sizes.js';
import type { Communicator, Dtype, ReduceOp } from './types.js';


/** Exit status for a command line the bench cannot run. */
const USAGE_EXIT = 2;

function usage(message: string): RingtrainError {
  return new RingtrainError('ERR_RINGTRAIN_ARGUMENT', message);
}

function parser(argv: string[]) {
  return yargs(argv)
    .scriptName('ringtrain-bench')
    .usage(
      '$0 [options]\n\nThe benchmark suite: collectives nccl-tests style (--collective), or synthetic tfjs training with\n' +
        'scaling efficiency (--train). Run one per rank (the rank contract in the environment), or through\n' +
        '`ringtrain [launcher options] bench [options]`.',
    )
    .option('collective', { choices: [...COLLECTIVE_NAMES, 'all'] as const, default: 'allreduce', describe: 'which collective to sweep (all: each in turn, one report)' })
    .option('b', { alias: 'minbytes', type: 'string', default: '8', describe: 'smallest size (K/M/G suffixes)' })
    .option('e', { alias: 'maxbytes', type: 'string', default: '64M', describe: 'largest size' })
    .option('f', { alias: 'stepfactor', type: 'number', default: 2, describe: 'multiply the size by this each step' })
    .option('n', { alias: 'iters', type: 'number', default: 20, describe: 'timed iterations per size (at least)' })
    .option('w', { alias: 'warmup_iters', type: 'number', default: 5, describe: 'untimed iterations per size' })
    .option('min-time-ms', { type: 'number', default: 100, describe: 'repeat small sizes until the timed loop lasts about this long (0: exactly -n)' })
    .option('startup-warmup-ms', { type: 'number', default: 300, describe: 'untimed small all-reduces before the first size' })
    .option('c', { alias: 'check', type: 'number', default: 1, describe: 'check each size\'s result outside the timed loop (1) or not (0)' })
    .option('d', { alias: 'datatype', choices: DTYPES, default: 'float32' as Dtype, describe: 'element type' })
    .option('o', { alias: 'op', choices: REDUCE_OPS, default: 'sum' as ReduceOp, describe: 'reduction (allreduce, reducescatter)' })
    .option('mode', { choices: ['sync', 'async'] as const, default: 'sync' as const, describe: 'blocking calls where the core has them, or awaited promises' })
    .option('device', { choices: ['cpu', 'cuda'] as const, default: 'cpu' as const, describe: 'buffers in host memory, or on the GPU (allreduce; CUDA build + GPU)' })
    .option('csv', { type: 'boolean', default: false, describe: `print CSV (${CSV_HEADER})` })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON document (every mode)' })
    .option('train', { type: 'boolean', default: false, describe: 'synthetic tfjs training benchmark with scaling efficiency' })
    .option('model', { choices: ['mlp', 'cnn'] as const, default: 'mlp' as const, describe: '--train: model' })
    .option('input', { type: 'string', default: '784', describe: '--train: input shape, e.g. 784 (mlp) or 28x28x1 (cnn)' })
    .option('layers', { type: 'string', default: '64', describe: '--train mlp: hidden layer widths, comma-separated' })
    .option('filters', { type: 'string', default: '8,16', describe: '--train cnn: filters of each conv layer (each followed by 2x2 max pooling)' })
    .option('kernel', { type: 'number', default: 5, describe: '--train cnn: kernel size' })
    .option('classes', { type: 'number', default: 10, describe: '--train: output classes' })
    .option('batch', { type: 'number', default: 32, describe: '--train: batch per rank (weak scaling: the same on 1 and n ranks)' })
    .option('steps', { type: 'number', default: 100, describe: '--train: timed steps per phase' })
    .option('warmup-steps', { type: 'number', default: 10, describe: '--train: untimed steps before each phase' })
    .option('repeat', { type: 'number', default: 1, describe: '--train: alternate the 1-process and n-rank phases this many times' })
    .option('compression', { choices: ['none', 'fp16'] as const, default: 'none' as const, describe: '--train: gradient compression' })
    .example('$0 -b 8 -e 128M -f 2', 'all-reduce, 8 B .. 128 MiB, doubling')
    .example('$0 --collective all -b 1K -e 64M -f 4', 'every collective, one report')
    .example('$0 --train --model cnn --filters 16,32 --batch 64', 'training throughput and scaling efficiency')
    .example('RINGTRAIN_RANK=0 RINGTRAIN_SIZE=2 RINGTRAIN_ADDR=127.0.0.1:29500 $0 --csv', 'rank 0 of 2, CSV for compare.py')
    .strict()
    .wrap(null)
    .help();
}

type Args = Awaited<ReturnType<ReturnType<typeof parser>['parseAsync']>>;

function positiveInt(v: number, what: string, min = 1): number {
  if (!Number.isInteger(v) || v < min) throw usage(`${what} must be an integer >= ${min}, got ${v}`);
  return v;
}

function size(text: string, what: string): number {
  try {
    return parseSize(text, what);
  } catch (e) {
    throw usage((e as Error).message);
  }
}

function benchOptions(args: Args): BenchOptions {
  const o: BenchOptions = {
    minBytes: size(args.b, '-b'),
    maxBytes: size(args.e, '-e'),
    stepFactor: args.f,
    iters: positiveInt(args.n, '-n'),
    warmup: positiveInt(args.w, '-w', 0),
    minTimeMs: args['min-time-ms'],
    startupWarmupMs: args['startup-warmup-ms'],
    check: args.c !== 0,
    dtype: args.d,
    op: args.o,
    mode: args.mode,
    device: args.device,
  };
  if (o.minBytes > o.maxBytes) throw usage(`-b ${args.b} is larger than -e ${args.e}`);
  if (!(o.stepFactor >= 1)) throw usage(`-f must be >= 1, got ${args.f}`);
  if (!(o.minTimeMs >= 0)) throw usage(`--min-time-ms must be >= 0, got ${args['min-time-ms']}`);
  if (!(o.startupWarmupMs >= 0)) throw usage(`--startup-warmup-ms must be >= 0, got ${args['startup-warmup-ms']}`);
  if (o.device === 'cuda') {
    if (args.collective !== 'allreduce') throw usage(`--device cuda benchmarks the allreduce only, not --collective ${args.collective}`);
    const info = cudaInfo();
    if (!info?.builtWithCuda) throw usage('--device cuda needs an addon built with CUDA (see `ringtrain info`)');
    if (info.unavailableReason) throw usage(`--device cuda: ${info.unavailableReason}`);
  }
  return o;
}

function hostCount(comm: Communicator): number {
  return new Set(comm.peers.map((p) => p.hostname)).size;
}

/** Which collectives run, and which are refused (with why) on this communicator. */
function plan(comm: Communicator, name: string): { run: Collective[]; skipped: SkippedCollective[] } {
  const run: Collective[] = [];
  const skipped: SkippedCollective[] = [];
  for (const c of collectivesFor(name)) {
    const reason = c.unavailable(comm);
    if (reason) skipped.push({ name: c.name, reason });
    else run.push(c);
  }
  if (name !== 'all' && skipped.length) throw usage(`--collective ${name}: ${skipped[0]!.reason}`);
  return { run, skipped };
}

async function collectives(args: Args): Promise<number> {
  const o = benchOptions(args);
  const comm = await init();
  try {
    const lead = comm.rank === 0;
    const print = (line: string): void => void (lead && process.stdout.write(`${line}\n`));
    const ctx: BenchContext = { ranks: comm.size, hosts: hostCount(comm), options: o, machine: { cores: os.availableParallelism(), loadAtStart: os.loadavg()[0]! } };
    const { run, skipped } = plan(comm, args.collective);
    const progress = lead ? ProgressLine.forProcess() : undefined;
    const table = !args.csv && !args.json;
    if (table) print(formatRunHeader(ctx));
    if (args.csv) print(CSV_HEADER);
    await startupWarmup(comm, o.dtype, o.startupWarmupMs);
    const results: CollectiveResult[] = [];
    for (const [k, c] of run.entries()) {
      if (table) print(`#\n${formatCollectiveHeader(c, ctx)}`);
      const rows = await runSweep(comm, c, o, {
        onSize: (at) =>
          progress?.update(
            `${at.collective} (${k + 1}/${run.length}): size ${formatSize(at.bytes)} (${at.index}/${at.total})`,
          ),
        onRow: (row) => {
          progress?.clear();
          if (table) print(formatRow(row));
          if (args.csv) print(formatCsvRow(row));
        },
      });
      results.push({ collective: c, rows });
      if (table) print(formatCollectiveFooter(rows, o.check));
    }
    progress?.clear();
    if (table) for (const s of skipped) print(`#\n${formatSkipped(s)}`);
    if (args.json) print(JSON.stringify(benchJson(ctx, results, skipped)));
    return results.some((r) => totalErrors(r.rows) > 0) ? 1 : 0;
  } finally {
    await comm.close();
  }
}

function trainOptions(args: Args): TrainBenchOptions {
  const list = (text: string, what: string, sep: RegExp): number[] =>
    text.split(sep).map((t) => {
      const v = Number(t.trim());
      if (!Number.isInteger(v) || v < 1) throw usage(`${what}: '${text}' must be positive integers separated by '${sep.source.replace(/\\/g, '')}'`);
      return v;
    });
  return {
    model: args.model,
    input: list(args.input, '--input', /x/),
    layers: list(args.layers, '--layers', /,/),
    filters: list(args.filters, '--filters', /,/),
    kernel: positiveInt(args.kernel, '--kernel'),
    classes: positiveInt(args.classes, '--classes', 2),
    batch: positiveInt(args.batch, '--batch'),
    steps: positiveInt(args.steps, '--steps'),
    warmupSteps: positiveInt(args['warmup-steps'], '--warmup-steps', 0),
    repeat: positiveInt(args.repeat, '--repeat'),
    compression: args.compression,
  };
}

export async function main(argv: string[]): Promise<number> {
  const args = await parser(argv).parseAsync();
  if (args.csv && args.json) throw usage('--csv and --json are mutually exclusive');
  if (args.train && args.csv) throw usage('--train prints a table or --json, not --csv');
  if (!args.train) return collectives(args);
  const options = trainOptions(args);
  // Loaded only here: it needs TensorFlow.js, which the collective benchmarks do not.
  let train: typeof import('./bench/train.js');
  try {
    train = await import('./bench/train.js');
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && /@tensorflow/.test((e as Error).message)) throw usage(NO_TFJS_MESSAGE);
    throw e;
  }
  const { runTrainBench } = train;
  return runTrainBench(options, { json: args.json });
}

main(hideBin(process.argv)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`ringtrain-bench: ${(e as Error).message.replace(/^ringtrain: /, '')}\n`);
    process.exit(e instanceof RingtrainError && e.code === 'ERR_RINGTRAIN_ARGUMENT' ? USAGE_EXIT : 1);
  },
);
