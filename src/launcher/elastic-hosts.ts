/**
 * Which workers an elastic job with --host-discovery-script should have: each answer of the
 * script is compared with the live workers. Workers on hosts that left the answer (or on slots
 * beyond a host's new count) are stopped; free slots on the hosts in it get new workers, up to
 * --max-np. A host whose workers failed HOST_FAILURE_LIMIT times is put aside for the rest of the
 * job. The launcher owns the processes; this class only decides.
 */
import { formatHost, type HostEntry } from './hostfile.js';

/** Failed workers (not stopped by the launcher) after which a host gets no more workers. */
export const HOST_FAILURE_LIMIT = 3;

export interface LiveWorker {
  id: number;
  host: string;
  localRank: number;
}

export interface HostPoolHooks {
  /** Workers that run and are not being stopped. */
  live(): LiveWorker[];
  spawn(host: HostEntry, localRank: number): Promise<void>;
  stop(id: number, why: string): void;
  say(message: string): void;
  /** False once the job is ending: no more workers. */
  accepting(): boolean;
}

export class ElasticHostPool {
  private readonly failures = new Map<string, number>();
  private readonly aside = new Set<string>();
  private readonly starting = new Set<string>();

  constructor(
    private readonly maxNp: number,
    private readonly hooks: HostPoolHooks,
  ) {}

  /** A worker on `host` failed (exited non-zero without being stopped). */
  workerFailed(host: string): void {
    const n = (this.failures.get(host) ?? 0) + 1;
    this.failures.set(host, n);
    if (n >= HOST_FAILURE_LIMIT && !this.aside.has(host)) {
      this.aside.add(host);
      this.hooks.say(`elastic: ${host} is put aside for the rest of the job: ${n} of its workers failed (limit ${HOST_FAILURE_LIMIT}); no new workers start there`);
    }
  }

  isAside(host: string): boolean {
    return this.aside.has(host);
  }

  /** One answer of the discovery script. */
  update(hosts: readonly HostEntry[]): void {
    if (!this.hooks.accepting()) return;
    const wanted = new Map(hosts.map((h) => [formatHost(h), h]));
    let live = this.hooks.live();
    for (const w of live) {
      const h = wanted.get(w.host);
      if (!h) this.hooks.stop(w.id, `stopped: ${w.host} left the host discovery script's output`);
      else if (w.localRank >= h.slots) this.hooks.stop(w.id, `stopped: ${w.host} now has ${h.slots} slot(s) in the host discovery script's output`);
    }
    live = this.hooks.live();
    let count = live.length + this.starting.size;
    for (const [name, h] of wanted) {
      if (this.aside.has(name)) continue;
      const used = new Set(live.filter((w) => w.host === name).map((w) => w.localRank));
      for (let slot = 0; slot < h.slots && count < this.maxNp; slot++) {
        const key = `${name}#${slot}`;
        if (used.has(slot) || this.starting.has(key)) continue;
        this.starting.add(key);
        count++;
        void this.hooks
          .spawn(h, slot)
          .catch((e: Error) => this.hooks.say(`warning: elastic: could not start a worker on ${name}: ${e.message}`))
          .finally(() => this.starting.delete(key));
      }
    }
  }
}
