/**
 * The check every PipelineModel call makes before it trains or sends anything: one small
 * all-reduce over the whole job in which each rank reports whether its own arguments were
 * acceptable, a hash of the model and arguments every rank must share, a hash of its stage's
 * weights (which its data-parallel replicas must share), and a seed. So an argument error on one
 * rank, or ranks that built different models, become a clear error on every rank instead of a
 * hang in the first receive.
 */
import { RingtrainError } from '../errors.js';
import type { Communicator } from '../types.js';

export interface PipelineReport {
  /** This rank's own argument error, if any. */
  error: RingtrainError | undefined;
  /** Hash of what every rank must agree on (layers, shapes, options, data shapes). */
  globalHash: number;
  /** Hash of this rank's stage weights (shapes and dtypes). */
  stageHash: number;
  stage: number;
  /** Shown in messages. */
  layers: number;
  params: number;
  /** Only rank 0's is used: the shared seed of this call. */
  seed: number;
}

const WIDTH = 7;

function ranksText(ranks: readonly number[]): string {
  const shown = ranks.length > 8 ? `${ranks.slice(0, 8).join(',')},…` : ranks.join(',');
  return `rank${ranks.length > 1 ? 's' : ''} ${shown}`;
}

function groupBy<T>(items: readonly T[], key: (t: T) => number): number[][] {
  const groups = new Map<number, number[]>();
  items.forEach((t, r) => {
    const g = groups.get(key(t)) ?? [];
    g.push(r);
    groups.set(key(t), g);
  });
  return [...groups.values()];
}

/** Returns the agreed seed, or throws the same kind of error on every rank. */
export async function agreeOnPipeline(comm: Communicator, who: string, mine: PipelineReport): Promise<number> {
  const v = new Int32Array(comm.size * WIDTH);
  const o = comm.rank * WIDTH;
  v.set([mine.error ? 1 : 0, mine.globalHash, mine.stageHash, mine.stage, mine.layers, mine.params | 0, mine.seed | 0], o);
  await comm.allreduce(v, { op: 'sum' });
  const all = Array.from({ length: comm.size }, (_, r) => {
    const s = v.subarray(r * WIDTH, (r + 1) * WIDTH);
    return { error: s[0]! !== 0, globalHash: s[1]!, stageHash: s[2]!, stage: s[3]!, layers: s[4]!, params: s[5]!, seed: s[6]! };
  });
  const refused = all.flatMap((s, r) => (s.error ? [r] : []));
  if (mine.error) throw mine.error;
  if (refused.length > 0) {
    throw new RingtrainError(
      'ERR_RINGTRAIN_ARGUMENT',
      `ringtrain: ${who}: ${ranksText(refused)} refused the arguments (see the error there); nothing was trained or sent`,
    );
  }
  const globalGroups = groupBy(all, (s) => s.globalHash);
  if (globalGroups.length > 1) {
    const parts = globalGroups.map((ranks) => `${ranksText(ranks)}: ${all[ranks[0]!]!.layers} layers, ${all[ranks[0]!]!.params} parameters known`);
    throw new RingtrainError(
      'ERR_RINGTRAIN_MISMATCH',
      `ringtrain: ${who}: the model, the pipeline options or the data shapes differ between ranks (${parts.join('; ')}). ` +
        'Every rank must build the same model and pass the same options and data.',
    );
  }
  const stages = new Set(all.map((s) => s.stage));
  for (const stage of stages) {
    const members = all.map((s, r) => ({ s, r })).filter((e) => e.s.stage === stage);
    const groups = groupBy(members, (e) => e.s.stageHash);
    if (groups.length > 1) {
      const parts = groups.map((idx) => `${ranksText(idx.map((i) => members[i]!.r))}: ${members[idx[0]!]!.s.params} parameters`);
      throw new RingtrainError(
        'ERR_RINGTRAIN_MISMATCH',
        `ringtrain: ${who}: the weights of stage ${stage} differ between its data-parallel replicas (${parts.join('; ')}). Every rank must build the same model.`,
      );
    }
  }
  return all[0]!.seed;
}
