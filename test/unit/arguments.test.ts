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

  it('an error found before anything was sent leaves the communicator usable, async and sync alike', async () => {
    const comm = await init({ env: {} });
    try {
      // Refused by the TypeScript checks.
      await expect(comm.allreduce(new Float32Array(3), { op: 'mean' as 'sum' })).rejects.toMatchObject({ code: 'ERR_RINGTRAIN_ARGUMENT' });
      expect(() => comm.allreduceSync(new Uint32Array(3) as unknown as Float32Array)).toThrow(/Uint32Array is not supported/);
      // Refused by the addon before the call is queued.
      await expect(comm.allreduceDevice(0n, 3, 'float32')).rejects.toMatchObject({ code: 'ERR_RINGTRAIN_ARGUMENT' });
      expect(comm.closed).toBe(false);
      expect(Array.from(await comm.allreduce(new Int32Array([4, 5])))).toEqual([4, 5]);
      expect(Array.from(comm.allreduceSync(new Int32Array([6])))).toEqual([6]);
    } finally {
      await comm.close();
    }
  });
});
