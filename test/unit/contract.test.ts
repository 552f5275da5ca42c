// The rank contract: what init() reads from options and the environment, and what it says when the
// contract is wrong (in-process: resolveContract is a pure function of its options and env).
import { describe, expect, it } from 'vitest';
import { resolveContract } from '../../dist/contract.js';

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
