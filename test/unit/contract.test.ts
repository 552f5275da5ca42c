// The rank contract: what init() reads from options and the environment, and what it says when the
// contract is wrong (in-process: resolveContract is a pure function of its options and env).
import { describe, expect, it } from 'vitest';
import { FOREIGN_CONTRACT_VARIABLES, resolveContract } from '../../dist/contract.js';

describe('rank contract errors say which variable to set', () => {
  const contractCases: [string, Record<string, string>, RegExp][] = [
    ['rank out of range', { RINGTRAIN_RANK: '5', RINGTRAIN_SIZE: '4' }, /rank 5 is out of range for a world of size 4/],
    ['rank without size', { RINGTRAIN_RANK: '1', RINGTRAIN_SIZE: '' }, /set RINGTRAIN_SIZE/],
    ['size without address', { RINGTRAIN_RANK: '1', RINGTRAIN_SIZE: '2', RINGTRAIN_ADDR: '' }, /set RINGTRAIN_ADDR=host:port/],
    ['contradictory conventions', { RINGTRAIN_RANK: '1', RINGTRAIN_SIZE: '2', OMPI_COMM_WORLD_RANK: '0' }, /contradictory rank contract: RINGTRAIN_RANK=1 but OMPI_COMM_WORLD_RANK=0/],
    ['malformed address', { RINGTRAIN_RANK: '0', RINGTRAIN_SIZE: '2', RINGTRAIN_ADDR: 'nohostport' }, /RINGTRAIN_ADDR: expected host:port/],
    ['not a number', { RINGTRAIN_RANK: 'one', RINGTRAIN_SIZE: '2' }, /RINGTRAIN_RANK='one' is not an integer/],
  ];
  for (const [name, env, message] of contractCases) {
    it(`a wrong rank contract (${name}) says which variable to set`, () => {
      let error: unknown;
      try {
        resolveContract({ env: { RINGTRAIN_ADDR: '127.0.0.1:1', ...env } });
      } catch (e) {
        error = e;
      }
      expect(error).toMatchObject({ code: 'ERR_RINGTRAIN_CONTRACT' });
      expect((error as Error).message).toMatch(message);
    });
  }
});

describe('rank contracts of other engines', () => {
  const addr = { RINGTRAIN_ADDR: 'rank0.example:29500' };
  it('PMI (Slurm --mpi=pmi2, MPICH/Hydra): PMI_RANK and PMI_SIZE, with Hydra’s local place', () => {
    const c = resolveContract({ env: { ...addr, PMI_RANK: '3', PMI_SIZE: '8', MPI_LOCALRANKID: '1', MPI_LOCALNRANKS: '2' } });
    expect(c).toMatchObject({ rank: 3, size: 8, localRank: 1, localSize: 2, source: 'PMI_RANK' });
  });
  it('PMI agreeing with Slurm’s own variables is fine; contradicting them is an error naming both', () => {
    expect(resolveContract({ env: { ...addr, PMI_RANK: '2', PMI_SIZE: '4', SLURM_PROCID: '2', SLURM_NTASKS: '4' } })).toMatchObject({ rank: 2, size: 4 });
    expect(() => resolveContract({ env: { ...addr, PMI_RANK: '2', PMI_SIZE: '4', SLURM_PROCID: '1', SLURM_NTASKS: '4' } })).toThrow(
      /contradictory rank contract: SLURM_PROCID=1 but PMI_RANK=2/,
    );
  });
  it('PMI_SIZE without a rank says to set one, listing PMI_RANK', () => {
    expect(() => resolveContract({ env: { ...addr, PMI_SIZE: '4' } })).toThrow(/PMI_SIZE is set but the rank is not: .*PMI_RANK/);
  });
  it('Kubernetes Indexed Job: JOB_COMPLETION_INDEX is the rank when the pod spec sets the world size', () => {
    const c = resolveContract({ env: { ...addr, JOB_COMPLETION_INDEX: '2', RINGTRAIN_SIZE: '4' } });
    expect(c).toMatchObject({ rank: 2, size: 4, source: 'JOB_COMPLETION_INDEX', addr: { host: 'rank0.example', port: 29500 } });
    expect(() => resolveContract({ env: { ...addr, JOB_COMPLETION_INDEX: '4', RINGTRAIN_SIZE: '4' } })).toThrow(/rank 4 is out of range for a world of size 4/);
    expect(() => resolveContract({ env: { ...addr, JOB_COMPLETION_INDEX: '1', RINGTRAIN_SIZE: '4', RINGTRAIN_RANK: '2' } })).toThrow(
      /contradictory rank contract: RINGTRAIN_RANK=2 but JOB_COMPLETION_INDEX=1/,
    );
  });
  it('an Indexed Job pod without a world size stays a world of one (its index is not a rank)', () => {
    expect(resolveContract({ env: { JOB_COMPLETION_INDEX: '7' } })).toMatchObject({ rank: 0, size: 1 });
  });
  it('the launcher strips every foreign engine variable from what its ranks inherit', () => {
    for (const v of ['PMI_RANK', 'PMI_SIZE', 'MPI_LOCALRANKID', 'JOB_COMPLETION_INDEX', 'SLURM_PROCID', 'RANK', 'MASTER_ADDR']) {
      expect(FOREIGN_CONTRACT_VARIABLES).toContain(v);
    }
    expect(FOREIGN_CONTRACT_VARIABLES.filter((v) => v.startsWith('RINGTRAIN_'))).toEqual([]);
  });
});
