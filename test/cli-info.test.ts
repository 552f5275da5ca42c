// `ringtrain info`: the installation, then the tuning settings this environment resolves to.
import { describe, expect, it } from 'vitest';
import { runCli } from './helpers/processes.js';

describe('ringtrain info', () => {
  it('prints every setting with its value and source, as text and as JSON', async () => {
    const env = { ...process.env, RINGTRAIN_SMALL_BYTES: '64K', RINGTRAIN_SPIN_US: '' };
    const text = await runCli(['info'], { env });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^settings \(init\(\) options win over these variables\)$/m);
    expect(text.stdout).toMatch(/^ {2}smallBytes +64K +\(from RINGTRAIN_SMALL_BYTES, job-wide\)$/m);
    expect(text.stdout).toMatch(/^ {2}spinUs +50 us +\(default; RINGTRAIN_SPIN_US, per rank\)$/m);
    const json = await runCli(['info', '--json'], { env });
    expect(json.code, json.stderr).toBe(0);
    const settings = (JSON.parse(json.stdout) as { settings: { name: string; value: number; source: string }[] }).settings;
    expect(settings.map((s) => s.name)).toEqual(['timeoutMs', 'stallWarningMs', 'segmentBytes', 'smallBytes', 'pieceBytes', 'spinUs', 'fusionBytes', 'pipelineBytes']);
    expect(settings.find((s) => s.name === 'smallBytes')).toMatchObject({ value: 65536, source: 'environment' });
  });

  it('a malformed setting is an error naming the variable, exit 1', async () => {
    const r = await runCli(['info'], { env: { ...process.env, RINGTRAIN_PIECE_BYTES: 'big' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/RINGTRAIN_PIECE_BYTES: expected a size like 4, 64K, 16M or 1G, got 'big'/);
  });
});
