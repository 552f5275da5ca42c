#!/usr/bin/env node
/** ringtrain-bench: one rank of the all-reduce benchmark; rank 0 prints the table (or CSV). */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { CSV_HEADER, averageBusbw, formatBenchHeader, formatBenchRow, formatCsvRow, runBench, type BenchOptions } from './bench.js';
import { cudaInfo } from './device.js';
import { init } from './init.js';
import { parseSize } from './sizes.js';
import type { Dtype, ReduceOp } from './types.js';

const DTYPES: readonly Dtype[] = ['float32', 'float64', 'int32', 'int8', 'uint8', 'int64', 'float16', 'bfloat16'];
const OPS: readonly ReduceOp[] = ['sum', 'avg', 'min', 'max', 'prod'];

export async function main(argv: string[]): Promise<number> {
  const args = await yargs(argv)
    .scriptName('ringtrain-bench')
    .usage('$0 [options]\n\nAll-reduce bandwidth, nccl-tests style. Run one per rank (the rank contract in the environment), or through `ringtrain ... bench`.')
    .option('b', { alias: 'minbytes', type: 'string', default: '8', describe: 'smallest message size (K/M/G suffixes)' })
    .option('e', { alias: 'maxbytes', type: 'string', default: '64M', describe: 'largest message size' })
    .option('f', { alias: 'stepfactor', type: 'number', default: 2, describe: 'multiply the size by this each step' })
    .option('n', { alias: 'iters', type: 'number', default: 20, describe: 'timed iterations per size (at least)' })
    .option('w', { alias: 'warmup_iters', type: 'number', default: 5, describe: 'untimed iterations per size' })
    .option('min-time-ms', { type: 'number', default: 100, describe: 'repeat small sizes until the timed loop lasts about this long (0: exactly -n)' })
    .option('startup-warmup-ms', { type: 'number', default: 300, describe: 'untimed small all-reduces before the first size' })
    .option('c', { alias: 'check', type: 'number', default: 1, describe: 'check results (1) or not (0)' })
    .option('d', { alias: 'datatype', choices: DTYPES, default: 'float32' as Dtype, describe: 'element type' })
    .option('o', { alias: 'op', choices: OPS, default: 'sum' as ReduceOp, describe: 'reduction' })
    .option('mode', { choices: ['sync', 'async'] as const, default: 'sync' as const, describe: 'blocking calls, or awaited promises' })
    .option('device', { choices: ['cpu', 'cuda'] as const, default: 'cpu' as const, describe: 'buffers in host memory, or on the GPU (CUDA build + GPU)' })
    .option('csv', { type: 'boolean', default: false, describe: `print CSV (${CSV_HEADER})` })
    .example('$0 -b 8 -e 128M -f 2', 'sweep 8 B .. 128 MiB, doubling')
    .example('$0 --device cuda -b 1M -e 256M', 'buffers in GPU memory (one GPU per rank: CUDA_VISIBLE_DEVICES)')
    .example('RINGTRAIN_RANK=0 RINGTRAIN_SIZE=2 RINGTRAIN_ADDR=127.0.0.1:29500 $0 --csv', 'rank 0 of 2, CSV for compare.py')
    .strict()
    .wrap(null)
    .help()
    .parseAsync();

  const o: BenchOptions = {
    minBytes: parseSize(args.b, '-b'),
    maxBytes: parseSize(args.e, '-e'),
    stepFactor: args.f,
    iters: args.n,
    warmup: args.w,
    minTimeMs: args['min-time-ms'],
    startupWarmupMs: args['startup-warmup-ms'],
    check: args.c !== 0,
    dtype: args.d,
    op: args.o,
    mode: args.mode,
    device: args.device,
  };
  if (o.minBytes > o.maxBytes) throw new Error(`-b ${args.b} is larger than -e ${args.e}`);
  if (!(o.stepFactor >= 1)) throw new Error(`-f must be >= 1, got ${args.f}`);
  if (!Number.isInteger(o.iters) || o.iters < 1) throw new Error(`-n must be a positive integer, got ${args.n}`);
  if (!Number.isInteger(o.warmup) || o.warmup < 0) throw new Error(`-w must be an integer >= 0, got ${args.w}`);
  if (!(o.minTimeMs >= 0)) throw new Error(`--min-time-ms must be >= 0, got ${args['min-time-ms']}`);
  if (!(o.startupWarmupMs >= 0)) throw new Error(`--startup-warmup-ms must be >= 0, got ${args['startup-warmup-ms']}`);

  if (o.device === 'cuda') {
    const info = cudaInfo();
    if (!info?.builtWithCuda) throw new Error('--device cuda needs an addon built with CUDA (see `ringtrain info`)');
    if (info.unavailableReason) throw new Error(`--device cuda: ${info.unavailableReason}`);
  }
  const comm = await init();
  const lead = comm.rank === 0;
  if (lead) console.log(args.csv ? CSV_HEADER : formatBenchHeader(comm.size, o));
  const rows = await runBench(comm, o, (row) => {
    if (lead) console.log(args.csv ? formatCsvRow(row) : formatBenchRow(row));
  });
  if (lead && !args.csv) {
    console.log(`# Out of bounds values : ${rows.reduce((a, r) => a + r.errors, 0)} ${rows.some((r) => r.errors) ? 'FAILED' : 'OK'}`);
    console.log(`# Avg bus bandwidth    : ${averageBusbw(rows).toFixed(4)} GB/s`);
  }
  await comm.close();
  return rows.some((r) => r.errors > 0) ? 1 : 0;
}

main(hideBin(process.argv)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`ringtrain-bench: ${(e as Error).message}\n`);
    process.exit(2);
  },
);
