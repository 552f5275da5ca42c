// The settings table: each setting from its init() option, else its variable, else its default;
// sizes with K/M/G suffixes; and the verdict the rendezvous gives on job-wide settings.
import { describe, expect, it } from 'vitest';
import { resolveContract } from '../../dist/contract.js';
import { SETTINGS, formatSettingsReport, jobSettings, resolveSettings, settingsDisagreement, settingsReport } from '../../dist/settings.js';

const DEFAULTS = {
  timeoutMs: 120_000,
  stallWarningMs: 30_000,
  segmentBytes: 1 << 20,
  smallBytes: 32 << 10,
  pieceBytes: 8 << 20,
  spinUs: 50,
  fusionBytes: 64 << 20,
  pipelineBytes: 1 << 20,
};

describe('settings', () => {
  it('defaults when nothing is set', () => {
    expect(resolveSettings({}, {})).toEqual(DEFAULTS);
    expect(resolveContract({ env: {} }).settings).toEqual(DEFAULTS);
  });

  it('reads every setting from its variable, sizes with K/M/G suffixes; an empty variable counts as unset', () => {
    const env = {
      RINGTRAIN_TIMEOUT_MS: '5000',
      RINGTRAIN_STALL_WARNING_MS: '',
      RINGTRAIN_SEGMENT_BYTES: '64K',
      RINGTRAIN_SMALL_BYTES: '0',
      RINGTRAIN_PIECE_BYTES: '16MiB',
      RINGTRAIN_SPIN_US: '0',
      RINGTRAIN_FUSION_BYTES: '1G',
      RINGTRAIN_PIPELINE_BYTES: '512k',
    };
    expect(resolveSettings({}, env)).toEqual({
      timeoutMs: 5000,
      stallWarningMs: 5000, // the default never exceeds the timeout
      segmentBytes: 64 << 10,
      smallBytes: 0,
      pieceBytes: 16 << 20,
      spinUs: 0,
      fusionBytes: 1 << 30,
      pipelineBytes: 512 << 10,
    });
  });

  it('an init() option wins over its variable (also through init({ env }))', () => {
    const env = { RINGTRAIN_SMALL_BYTES: '1M', RINGTRAIN_SPIN_US: '7' };
    expect(resolveSettings({ smallBytes: 0 }, env)).toMatchObject({ smallBytes: 0, spinUs: 7 });
    expect(resolveContract({ env, pieceBytes: 4096 }).settings).toMatchObject({ smallBytes: 1 << 20, spinUs: 7, pieceBytes: 4096 });
  });

  it.each([
    [{ RINGTRAIN_TIMEOUT_MS: '0' }, "RINGTRAIN_TIMEOUT_MS='0' is not an integer >= 1"],
    [{ RINGTRAIN_SPIN_US: '5us' }, "RINGTRAIN_SPIN_US='5us' is not an integer >= 0"],
    [{ RINGTRAIN_SEGMENT_BYTES: '0' }, "RINGTRAIN_SEGMENT_BYTES='0' must be at least 1 byte"],
    [{ RINGTRAIN_SMALL_BYTES: 'lots' }, "RINGTRAIN_SMALL_BYTES: expected a size like 4, 64K, 16M or 1G, got 'lots'"],
  ])('refuses %j with a contract error naming the variable', (env, message) => {
    expect(() => resolveSettings({}, env)).toThrow(message);
    expect(() => resolveSettings({}, env)).toThrow(expect.objectContaining({ code: 'ERR_RINGTRAIN_CONTRACT' }));
  });

  it('refuses an option that is not a whole number in range', () => {
    expect(() => resolveSettings({ segmentBytes: 0 }, {})).toThrow('segmentBytes must be an integer >= 1, got 0');
    expect(() => resolveSettings({ timeoutMs: 1.5 }, {})).toThrow('timeoutMs must be an integer >= 1, got 1.5');
  });

  it('has one row per setting, each with its own variable, and names the job-wide ones', () => {
    expect(SETTINGS.map((s) => s.name).sort()).toEqual(Object.keys(DEFAULTS).sort());
    expect(new Set(SETTINGS.map((s) => s.env)).size).toBe(SETTINGS.length);
    expect(Object.keys(jobSettings(DEFAULTS)).sort()).toEqual(['pieceBytes', 'segmentBytes', 'smallBytes']);
  });

  it('job-wide settings: agreement passes, a difference names the rank, the setting and its variable', () => {
    const base = jobSettings(DEFAULTS);
    expect(settingsDisagreement([base, { ...base }, { ...base }])).toBeUndefined();
    expect(settingsDisagreement([base, { ...base }, { ...base, smallBytes: 65536 }])).toBe(
      'job-wide setting smallBytes (RINGTRAIN_SMALL_BYTES) differs between ranks: rank 2 has 65536, rank 0 has 32768; set it to the same value on every rank',
    );
    expect(settingsDisagreement([base, undefined])).toMatch(/segmentBytes \(RINGTRAIN_SEGMENT_BYTES\) differs between ranks: rank 1 has nothing, rank 0 has 1048576/);
  });
});

describe('ringtrain info: the settings report', () => {
  it('lists every setting with its value, where it came from and whether it is job-wide', () => {
    const rows = settingsReport({ RINGTRAIN_SMALL_BYTES: '64K' });
    expect(rows).toHaveLength(SETTINGS.length);
    expect(rows.find((r) => r.name === 'smallBytes')).toEqual({ name: 'smallBytes', value: 65536, unit: 'bytes', env: 'RINGTRAIN_SMALL_BYTES', source: 'environment', scope: 'job' });
    expect(rows.find((r) => r.name === 'timeoutMs')).toMatchObject({ value: 120_000, source: 'default', scope: 'rank' });
    const text = formatSettingsReport(rows);
    expect(text).toMatch(/^ {2}smallBytes +64K +\(from RINGTRAIN_SMALL_BYTES, job-wide\)$/m);
    expect(text).toMatch(/^ {2}timeoutMs +120000 ms +\(default; RINGTRAIN_TIMEOUT_MS, per rank\)$/m);
  });
});

describe('comm.settings', () => {
  it('reports the effective settings, from init() options and init({ env }) alike', async () => {
    const { init } = await import('../../dist/index.js');
    const comm = await init({ env: { RINGTRAIN_SPIN_US: '3', RINGTRAIN_SEGMENT_BYTES: '256K' }, pieceBytes: 4096 });
    try {
      expect(comm.settings).toEqual({ ...DEFAULTS, spinUs: 3, segmentBytes: 256 << 10, pieceBytes: 4096 });
      expect(Object.isFrozen(comm.settings)).toBe(true);
      const v = await comm.allreduce(new Float32Array([1, 2, 3]));
      expect(Array.from(v)).toEqual([1, 2, 3]);
    } finally {
      await comm.close();
    }
  });
});
