// Argument checks of the collectives, on a world of one in this process (no rendezvous, no peers).
import { describe, expect, it } from 'vitest';
import { init } from '../../dist/index.js';

describe('argument checks', () => {
  it('rejects unsupported views and ops with clear argument errors', async () => {
    const comm = await init({ env: {} });
    await expect(comm.allreduce(new Uint32Array(3) as unknown as Float32Array)).rejects.toThrow(/Uint32Array is not supported/);
    await expect(comm.allreduce(new Float32Array(3), { op: 'mean' as 'sum' })).rejects.toThrow(/unknown op 'mean'/);
    await expect(comm.allreduce(new Uint16Array(3))).rejects.toThrow(/pass \{ dtype: 'float16' \}/);
    await expect(comm.broadcast(new Float32Array(3), 3)).rejects.toThrow(/root 3 is not a rank/);
    await comm.close();
    await expect(comm.allreduce(new Float32Array(3))).rejects.toMatchObject({ code: 'ERR_RINGTRAIN_CLOSED' });
    await comm.close(); // idempotent
  });
});
