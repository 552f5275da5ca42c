/**
 * docs/kubernetes.md's Indexed Job, as far as it can run here: N local processes get exactly the
 * environment each pod would (the manifest's env entries, the Secret's token, and the
 * JOB_COMPLETION_INDEX Kubernetes adds), with pod 0's DNS name replaced by 127.0.0.1 and a free
 * port, and form a ring with exact results.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FOREIGN_CONTRACT_VARIABLES } from '../dist/contract.js';
import { ROOT, freePort } from './helpers/processes.js';

const DOC = fs.readFileSync(path.join(ROOT, 'docs/kubernetes.md'), 'utf8');

/** The Job's plain `- name: X / value: "Y"` env entries, and the names of those taken from Secrets. */
function manifestEnv(): { values: Record<string, string>; fromSecret: string[]; completions: number } {
  const yaml = /```yaml\n([\s\S]*?)```/.exec(DOC)![1]!;
  const values: Record<string, string> = {};
  for (const m of yaml.matchAll(/- name: (\w+)\n\s+value: "([^"]*)"/g)) values[m[1]!] = m[2]!;
  const fromSecret = [...yaml.matchAll(/- name: (\w+)\n\s+valueFrom:\n\s+secretKeyRef:/g)].map((m) => m[1]!);
  const completions = Number(/completions: (\d+)/.exec(yaml)![1]);
  return { values, fromSecret, completions };
}

function runPod(env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['test/fixtures/lifecycle-worker.mjs', '1'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('Kubernetes Indexed Job (docs/kubernetes.md)', () => {
  it('the manifest sets what init() needs, and its pods, run as local processes, form one exact ring', async () => {
    const { values, fromSecret, completions } = manifestEnv();
    expect(values.RINGTRAIN_SIZE, 'RINGTRAIN_SIZE must equal completions').toBe(String(completions));
    expect(values.RINGTRAIN_ADDR).toMatch(/^train-0\.train:\d+$/);
    expect(fromSecret).toEqual(['RINGTRAIN_TOKEN']);

    // What a pod inherits from its image is not ours: start from a clean slate of rank variables.
    const base: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(base)) if (k.startsWith('RINGTRAIN_') || FOREIGN_CONTRACT_VARIABLES.includes(k)) delete base[k];
    const port = await freePort();
    const token = randomBytes(32).toString('hex');
    const pods = Array.from({ length: completions }, (_, index) => ({
      ...base,
      ...values,
      RINGTRAIN_ADDR: values.RINGTRAIN_ADDR!.replace(/^train-0\.train:\d+$/, `127.0.0.1:${port}`),
      RINGTRAIN_TOKEN: token,
      RINGTRAIN_TIMEOUT_MS: '15000', // the manifest's 10 minutes would only make a failure slow here
      JOB_COMPLETION_INDEX: String(index),
    }));
    const results = await Promise.all(pods.map(runPod));
    const reports = results.map((r, i) => {
      expect(r.code, `pod ${i}: ${r.stderr}${r.stdout}`).toBe(0);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as { rank: number; size: number; error?: unknown };
    });
    expect(reports.map((r) => r.rank)).toEqual([...Array(completions).keys()]);
    for (const r of reports) {
      expect(r.size).toBe(completions);
      expect(r.error).toBeUndefined();
    }
  });
});
