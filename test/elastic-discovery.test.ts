/**
 * The host discovery script as the launcher runs it (a real shell): good answers parsed, and every
 * way a script can misbehave (hang, fail, garbage, too much output) reported as an error, so the
 * launcher keeps its previous answer.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runDiscoveryScript } from '../src/launcher/host-discovery.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'rt-discovery-'));
function script(name: string, body: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

describe('host discovery script', () => {
  it('parses host:slots, hostfile-style and bare lines; empty output means no hosts', async () => {
    const hosts = await runDiscoveryScript(script('good.sh', 'echo "node1:2"; echo "node2 slots=4"; echo "# comment"; echo node3'));
    expect(hosts.map((h) => [h.host, h.slots])).toEqual([['node1', 2], ['node2', 4], ['node3', 1]]);
    expect(await runDiscoveryScript(script('empty.sh', 'exit 0'))).toEqual([]);
  });

  it('a script that hangs is killed and reported (its children too)', async () => {
    const t0 = Date.now();
    await expect(runDiscoveryScript(script('hang.sh', 'sleep 30 & sleep 30'), 500)).rejects.toThrow(/did not finish within 0.5s/);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('a failing script, garbage output and a missing script are reported with what they said', async () => {
    await expect(runDiscoveryScript(script('fail.sh', 'echo "no cloud API" >&2; exit 3'))).rejects.toThrow(/exited with code 3: no cloud API/);
    await expect(runDiscoveryScript(script('garbage.sh', 'echo "node1:two"'))).rejects.toThrow(/printed something that is not a host list .*slot count/);
    await expect(runDiscoveryScript(path.join(dir, 'missing.sh'))).rejects.toThrow(/exited with code 127/);
    await expect(runDiscoveryScript(script('flood.sh', 'yes node1:1 | head -c 200000'))).rejects.toThrow(/printed more than 65536 bytes/);
  });
});
