import { parseHostPort, parsePortRange, type HostPort } from './address.js';
import { RingtrainError } from './errors.js';
import { resolveSettings, type Settings } from './settings.js';
import { parseCount } from './sizes.js';
import type { InitOptions } from './types.js';

/** Everything a rank needs to know to join its job, resolved from options and the environment. */
export interface RankContract {
  rank: number;
  size: number;
  /** Undefined when nothing says: then derived at rendezvous from the hostnames. */
  localRank: number | undefined;
  localSize: number | undefined;
  /** Rendezvous address; undefined only for a world of one. */
  addr: HostPort | undefined;
  iface: string | undefined;
  token: string;
  portRange: [number, number] | undefined;
  /** Every tuning setting, resolved from the table in src/settings.ts. */
  settings: Settings;
  /** Which convention supplied rank and size, for messages. */
  source: string;
}

interface Convention {
  name: string;
  rank: string;
  size: string | undefined;
  localRank: string | undefined;
  localSize: string | undefined;
}

/** Kubernetes Indexed Jobs number their pods here; it says nothing about the world size. */
const K8S_INDEX = 'JOB_COMPLETION_INDEX';

// Order matters only for the message; contradictions between them are errors.
const CONVENTIONS: readonly Convention[] = [
  { name: 'ringtrain', rank: 'RINGTRAIN_RANK', size: 'RINGTRAIN_SIZE', localRank: 'RINGTRAIN_LOCAL_RANK', localSize: 'RINGTRAIN_LOCAL_SIZE' },
  { name: 'torchrun', rank: 'RANK', size: 'WORLD_SIZE', localRank: 'LOCAL_RANK', localSize: 'LOCAL_WORLD_SIZE' },
  { name: 'Open MPI', rank: 'OMPI_COMM_WORLD_RANK', size: 'OMPI_COMM_WORLD_SIZE', localRank: 'OMPI_COMM_WORLD_LOCAL_RANK', localSize: 'OMPI_COMM_WORLD_LOCAL_SIZE' },
  { name: 'Slurm', rank: 'SLURM_PROCID', size: 'SLURM_NTASKS', localRank: 'SLURM_LOCALID', localSize: undefined },
  // PMI (Slurm --mpi=pmi2/pmix, MPICH and Intel MPI's Hydra); Hydra adds the local place.
  { name: 'PMI', rank: 'PMI_RANK', size: 'PMI_SIZE', localRank: 'MPI_LOCALRANKID', localSize: 'MPI_LOCALNRANKS' },
  // Read only when a world size is set some other way (see resolveContract).
  { name: 'Kubernetes Indexed Job', rank: K8S_INDEX, size: undefined, localRank: undefined, localSize: undefined },
];

/**
 * The rank variables of other engines (and MASTER_ADDR/MASTER_PORT): a launcher that sets the
 * ringtrain contract for a process removes these from what it inherits, so they cannot contradict it.
 */
export const FOREIGN_CONTRACT_VARIABLES: readonly string[] = [
  ...CONVENTIONS.filter((c) => c.name !== 'ringtrain').flatMap((c) => [c.rank, c.size, c.localRank, c.localSize]),
  'MASTER_ADDR',
  'MASTER_PORT',
].filter((v): v is string => v !== undefined);

function contractError(message: string): RingtrainError {
  return new RingtrainError('ERR_RINGTRAIN_CONTRACT', `ringtrain: ${message}`);
}

function readInt(env: NodeJS.ProcessEnv, name: string, min: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  try {
    return parseCount(raw, name, min);
  } catch (e) {
    throw contractError((e as Error).message);
  }
}

function pick(
  env: NodeJS.ProcessEnv,
  field: 'rank' | 'size' | 'localRank' | 'localSize',
  min: number,
  withIndex = false,
): { value: number; from: string } | undefined {
  let found: { value: number; from: string } | undefined;
  for (const c of CONVENTIONS) {
    const name = c[field];
    if (name === undefined || (!withIndex && name === K8S_INDEX)) continue;
    const value = readInt(env, name, min);
    if (value === undefined) continue;
    if (found && found.value !== value) {
      throw contractError(`contradictory rank contract: ${found.from}=${found.value} but ${name}=${value}; unset one of them`);
    }
    found ??= { value, from: name };
  }
  return found;
}

function checkInt(value: number, what: string, min: number): number {
  if (!Number.isInteger(value) || value < min) throw contractError(`${what} must be an integer >= ${min}, got ${value}`);
  return value;
}

/** Resolves the rank contract. Options win over the environment; a missing or contradictory contract throws, saying what to set. */
export function resolveContract(options: InitOptions = {}): RankContract {
  const env = options.env ?? process.env;
  const sizeEnv = pick(env, 'size', 1);
  // An Indexed Job's pod index is its rank only in a job that says how many ranks there are:
  // pods of an ordinary Indexed Job that call init() stay worlds of one.
  const rankEnv = pick(env, 'rank', 0, sizeEnv !== undefined || options.size !== undefined);
  const localRankEnv = pick(env, 'localRank', 0);
  const localSizeEnv = pick(env, 'localSize', 1);

  let rank = options.rank ?? rankEnv?.value;
  let size = options.size ?? sizeEnv?.value;
  if (rank === undefined && size === undefined) {
    // Nothing set anywhere: a world of one, like running the script without a launcher.
    rank = 0;
    size = 1;
  }
  if (rank === undefined) {
    throw contractError(`${sizeEnv?.from ?? 'size'} is set but the rank is not: set RINGTRAIN_RANK (or RANK, OMPI_COMM_WORLD_RANK, SLURM_PROCID, PMI_RANK, JOB_COMPLETION_INDEX)`);
  }
  if (size === undefined) {
    throw contractError(`${rankEnv?.from ?? 'rank'} is set but the world size is not: set RINGTRAIN_SIZE (or WORLD_SIZE, OMPI_COMM_WORLD_SIZE, SLURM_NTASKS, PMI_SIZE)`);
  }
  checkInt(size, 'size', 1);
  checkInt(rank, 'rank', 0);
  if (rank >= size) throw contractError(`rank ${rank} is out of range for a world of size ${size} (ranks are 0..${size - 1})`);

  const localRank = options.localRank ?? localRankEnv?.value;
  const localSize = options.localSize ?? localSizeEnv?.value;
  if (localRank !== undefined && localSize !== undefined && localRank >= localSize) {
    throw contractError(`local rank ${localRank} is out of range for local size ${localSize}`);
  }

  let addr: HostPort | undefined;
  const addrText = options.addr ?? env.RINGTRAIN_ADDR;
  if (addrText !== undefined && addrText !== '') {
    try {
      addr = parseHostPort(addrText, options.addr !== undefined ? 'addr option' : 'RINGTRAIN_ADDR');
    } catch (e) {
      throw contractError((e as Error).message);
    }
  } else if (env.MASTER_ADDR) {
    const port = readInt(env, 'MASTER_PORT', 1);
    if (port === undefined) throw contractError('MASTER_ADDR is set but MASTER_PORT is not: set MASTER_PORT (or RINGTRAIN_ADDR=host:port)');
    addr = { host: env.MASTER_ADDR, port };
  }
  if (size > 1 && addr === undefined) {
    throw contractError(
      `a world of ${size} ranks needs a rendezvous address: set RINGTRAIN_ADDR=host:port (or MASTER_ADDR and MASTER_PORT); rank 0 serves it there`,
    );
  }

  const settings = resolveSettings(options, env);

  let portRange: [number, number] | undefined;
  if (options.portRange) {
    portRange = [options.portRange[0], options.portRange[1]];
  } else if (env.RINGTRAIN_PORT_RANGE) {
    try {
      portRange = parsePortRange(env.RINGTRAIN_PORT_RANGE, 'RINGTRAIN_PORT_RANGE');
    } catch (e) {
      throw contractError((e as Error).message);
    }
  }

  const iface = options.iface ?? (env.RINGTRAIN_IFACE || undefined);
  const token = options.token ?? env.RINGTRAIN_TOKEN ?? '';
  const source = options.rank !== undefined ? 'init options' : (rankEnv?.from ?? 'default (world of one)');

  return { rank, size, localRank, localSize, addr, iface, token, portRange, settings, source };
}
