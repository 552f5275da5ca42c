/**
 * Elastic worlds (`ringtrain --min-np`): decides who is in each world and tells every worker its
 * rank in it. The launcher owns the processes and tells this class what happened to them; this
 * class owns the generations.
 *
 * A world forms in two phases, each with a deadline:
 *  - gathering: every live worker that belongs to the broken world (or waits to join) must ask for
 *    the next world, i.e. it has left the old one. Workers that have not asked by the deadline are
 *    hung or cut off: they are stopped and lost.
 *  - forming: the askers, ordered host by host and by their fixed local rank (so a survivor keeps
 *    its GPU), get ranks 0..n-1 and a rendezvous of their own with a fresh token; it must complete
 *    by the deadline. A worker that dies or fails in either phase starts the gathering again.
 * Below --min-np live askers the job stops with the reason; nothing waits without a deadline.
 */
import { randomBytes } from 'node:crypto';
import { formatHostPort } from '../address.js';
import type { RendezvousServer } from '../rendezvous.js';
import type { ElasticControlServer } from './elastic-control.js';

export interface ElasticLimits {
  minNp: number;
  maxNp: number;
  /** ms for the gathering and for the forming phase each (--elastic-timeout). */
  reformTimeoutMs: number;
  /** ms for the first world (--start-timeout). */
  startTimeoutMs: number;
}

export interface CoordinatorHooks {
  say(message: string): void;
  verbose(message: string): void;
  /** Address `host`'s workers reach the launcher at. */
  advertiseFor(host: string): string;
  listen(size: number, token: string, timeoutMs: number): Promise<RendezvousServer>;
  /** Stops a worker's process (it is already counted as lost). */
  stopWorker(id: number): void;
  /** Ends the job with this message; every process is stopped. */
  fail(message: string): void;
}

interface Worker {
  id: number;
  host: string;
  /** Position of its host in the host list: worlds are ordered host by host. */
  hostOrder: number;
  /** Its slot on the host (and so its GPU), kept in every world. */
  localRank: number;
  alive: boolean;
  /** A pending request for a world newer than this generation. */
  asked: number | undefined;
  askedReason: string;
}

export interface LostWorker {
  id: number;
  host: string;
  /** Rank in the last world it belonged to, if any. */
  rank: number | undefined;
  gen: number | undefined;
  atMs: number;
  why: string;
}

type Phase = 'gathering' | 'forming' | 'running' | 'over';

export class ElasticCoordinator {
  private readonly workers = new Map<number, Worker>();
  private phase: Phase = 'gathering';
  private gen = -1;
  private current: { gen: number; members: number[] } | undefined;
  private attempt: { gen: number; members: number[]; server: RendezvousServer | undefined } | undefined;
  private deadline: NodeJS.Timeout | undefined;
  /** Incremented on every phase change: async steps of an abandoned phase notice and stop. */
  private epoch = 0;
  private brokenAt: number | undefined;
  private readonly servers: RendezvousServer[] = [];
  readonly lost: LostWorker[] = [];
  readonly reformations: { gen: number; size: number; ms: number; reason: string }[] = [];
  private reason = 'first world';
  private failed = false;

  constructor(
    private readonly limits: ElasticLimits,
    private readonly control: () => ElasticControlServer,
    private readonly hooks: CoordinatorHooks,
    private readonly startedAt: number,
  ) {}

  /** Starts the first gathering: the workers added so far make the first world. */
  start(): void {
    this.setDeadline(this.limits.startTimeoutMs, 'the start timeout (--start-timeout)');
    this.check();
  }

  addWorker(id: number, host: string, hostOrder: number, localRank: number): void {
    this.workers.set(id, { id, host, hostOrder, localRank, alive: true, asked: undefined, askedReason: '' });
  }

  /** Free slot numbers on `host` (slots of workers that are alive are taken). */
  usedLocalRanks(host: string): Set<number> {
    return new Set([...this.workers.values()].filter((w) => w.alive && w.host === host).map((w) => w.localRank));
  }

  get liveCount(): number {
    return [...this.workers.values()].filter((w) => w.alive).length;
  }

  /** No more worlds: the job finished or failed. */
  get over(): boolean {
    return this.phase === 'over';
  }

  get jobFailed(): boolean {
    return this.failed;
  }

  /** Members of the last world that formed, by worker id. */
  get members(): readonly number[] {
    return this.current?.members ?? [];
  }

  /** The launcher saw worker `id`'s process end. */
  exited(id: number, ok: boolean, why: string): void {
    const w = this.workers.get(id);
    if (!w || !w.alive) return;
    w.alive = false;
    if (this.phase === 'over') return;
    const inCurrent = this.current?.members.includes(id) ?? false;
    const inAttempt = this.attempt?.members.includes(id) ?? false;
    if (!ok) this.recordLoss(w, why);
    else if (this.phase !== 'running') this.recordLoss(w, `left the job (${why})`);
    else if (inCurrent) this.pendingLeavers.set(id, why);
    if (this.phase === 'running' && ok && this.current!.members.every((m) => !this.workers.get(m)!.alive && this.pendingLeavers.has(m))) {
      this.finish();
      return;
    }
    if (this.phase === 'running' && inCurrent && !ok) this.breakWorld(`worker ${id} (${this.rankText(id)}) on ${w.host} ${why}`);
    else if (this.phase === 'forming' && inAttempt) this.breakWorld(`worker ${id} on ${w.host} ${why} while generation ${this.attempt!.gen} formed`);
    else this.check();
  }

  /** Workers that exited 0 while their world ran: finished, or left gracefully (lost if the others re-form). */
  private readonly pendingLeavers = new Map<number, string>();

  onNext(id: number, after: number, reason: string): void {
    const w = this.workers.get(id);
    if (!w || !w.alive || this.phase === 'over') return;
    w.asked = after;
    w.askedReason = reason;
    const member = this.current?.members.includes(id) ?? false;
    if (this.phase === 'running') {
      if (member && after >= this.current!.gen) this.breakWorld(`${this.rankText(id)} on ${w.host} left generation ${this.current!.gen}: ${reason}`);
      else if (!member) this.announceJoiners(`worker ${id} on ${w.host} waits to join`);
      return;
    }
    if (this.phase === 'forming' && this.attempt!.members.includes(id) && after >= this.attempt!.gen) {
      this.breakWorld(`worker ${id} on ${w.host} failed to join generation ${this.attempt!.gen}: ${reason}`);
      return;
    }
    this.check();
  }

  /** Every rank of the running world finished: workers still waiting to join have nothing to join. */
  private finish(): void {
    this.phase = 'over';
    this.epoch++;
    if (this.deadline) clearTimeout(this.deadline);
    for (const w of this.workers.values()) {
      if (!w.alive) continue;
      this.hooks.say(`elastic: the ranks finished; stopping worker ${w.id} on ${w.host}, which waited to join`);
      w.alive = false;
      this.hooks.stopWorker(w.id);
    }
  }

  /** Ends the coordinator (the job is over): no further worlds. */
  async close(): Promise<void> {
    this.phase = 'over';
    this.epoch++;
    if (this.deadline) clearTimeout(this.deadline);
    await Promise.all(this.servers.map((s) => s.close().catch(() => undefined)));
  }

  /** The lines of the launcher's elastic summary. */
  summary(): string[] {
    const lines = [
      `elastic summary: ${this.reformations.length} world(s) formed; ${this.current ? `the last had ${this.current.members.length} rank(s)` : 'none formed'}`,
    ];
    for (const r of this.reformations) lines.push(`  generation ${r.gen}: ${r.size} rank(s), formed ${r.ms} ms after ${r.reason}`);
    for (const l of this.lost) {
      lines.push(`  lost at ${(l.atMs / 1000).toFixed(1)}s: worker ${l.id} on ${l.host}${l.rank !== undefined ? ` (rank ${l.rank} of generation ${l.gen})` : ''}: ${l.why}`);
    }
    if (this.lost.length === 0) lines.push('  no rank was lost');
    return lines;
  }

  private rankText(id: number): string {
    const r = this.current?.members.indexOf(id) ?? -1;
    return r >= 0 ? `rank ${r}` : `worker ${id}`;
  }

  private recordLoss(w: Worker, why: string): void {
    if (this.lost.some((l) => l.id === w.id)) return;
    const r = this.current?.members.indexOf(w.id) ?? -1;
    this.lost.push({ id: w.id, host: w.host, rank: r >= 0 ? r : undefined, gen: r >= 0 ? this.current!.gen : undefined, atMs: Date.now() - this.startedAt, why });
  }

  /** Tells the running ranks that workers wait: they re-form at their next commit (not when the world is full). */
  private announceJoiners(what: string): void {
    if (!this.current || this.current.members.length >= this.limits.maxNp) {
      this.hooks.say(`elastic: ${what}, but the world has --max-np ${this.limits.maxNp} rank(s) already`);
      return;
    }
    this.hooks.say(`elastic: ${what}; the ranks take it in at their next commit()`);
    this.control().broadcast({ t: 'grow', waiting: this.waitingCount() });
  }

  private waitingCount(): number {
    return [...this.workers.values()].filter((w) => w.alive && w.asked !== undefined && !(this.current?.members.includes(w.id) ?? false)).length;
  }

  private setDeadline(ms: number, what: string): void {
    if (this.deadline) clearTimeout(this.deadline);
    const epoch = this.epoch;
    this.deadline = setTimeout(() => {
      if (epoch === this.epoch) this.onDeadline(what);
    }, ms);
  }

  /** The current world (or the one forming) is broken: gather the workers for the next. */
  private breakWorld(reason: string): void {
    this.hooks.say(`elastic: ${reason}; re-forming the world`);
    this.brokenAt ??= Date.now();
    this.reason = reason.length > 120 ? `${reason.slice(0, 117)}...` : reason;
    if (this.current) {
      for (const [id, why] of this.pendingLeavers) {
        const w = this.workers.get(id);
        if (w) this.recordLoss(w, `left the job (${why})`);
      }
      this.pendingLeavers.clear();
    }
    const server = this.attempt?.server;
    // Ranks still joining or connecting the broken world stop waiting on it at once.
    const brokenGen = this.attempt?.gen ?? this.current?.gen;
    if (brokenGen !== undefined) this.control().broadcast({ t: 'abort', gen: brokenGen, reason: this.reason });
    this.abandoned = this.attempt?.members ?? [];
    this.attempt = undefined;
    // Closing the rendezvous makes its waiting joiners fail at once; they then ask again.
    void server?.close().catch(() => undefined);
    this.phase = 'gathering';
    this.epoch++;
    this.setDeadline(this.limits.reformTimeoutMs, 'the elastic timeout (--elastic-timeout)');
    this.check();
  }

  /** Who the gathering waits for: live members of the last world, or (before the first) every worker, and anyone who asked. */
  private candidates(): Worker[] {
    return [...this.workers.values()].filter(
      (w) =>
        w.alive &&
        (w.asked !== undefined || this.current === undefined || this.current.members.includes(w.id) || this.abandoned.includes(w.id)),
    );
  }

  /** Members of the attempt that was given up: they ask again as soon as its rendezvous closes. */
  private abandoned: number[] = [];

  private check(): void {
    if (this.phase !== 'gathering') return;
    const c = this.candidates();
    if (c.some((w) => w.asked === undefined)) return;
    void this.form(c);
  }

  private onDeadline(what: string): void {
    if (this.phase === 'gathering') {
      for (const w of this.candidates()) {
        if (w.asked !== undefined) continue;
        const why = this.current
          ? `did not leave generation ${this.current.gen} within ${what} (hung, or cut off from the others)`
          : `did not call init() within ${what}`;
        this.hooks.say(`elastic: worker ${w.id} on ${w.host} ${why}; stopping it`);
        this.recordLoss(w, why);
        w.alive = false;
        this.hooks.stopWorker(w.id);
      }
      void this.form(this.candidates());
    } else if (this.phase === 'forming') {
      this.breakWorld(`generation ${this.attempt?.gen} did not form within ${what}`);
    }
  }

  private order(ws: Worker[]): Worker[] {
    return [...ws].sort((a, b) => a.hostOrder - b.hostOrder || a.localRank - b.localRank || a.id - b.id);
  }

  private async form(ready: Worker[]): Promise<void> {
    const live = ready.filter((w) => w.alive && w.asked !== undefined);
    // Survivors first; joiners beyond --max-np keep waiting for a later world.
    const previous = new Set(this.current?.members ?? []);
    const chosen = [...this.order(live.filter((w) => previous.has(w.id))), ...this.order(live.filter((w) => !previous.has(w.id)))].slice(0, this.limits.maxNp);
    if (chosen.length < this.limits.minNp) {
      this.stopJob(chosen.length, live.length);
      return;
    }
    const members = this.order(chosen);
    const gen = ++this.gen;
    this.phase = 'forming';
    const epoch = ++this.epoch;
    const token = randomBytes(32).toString('hex');
    this.attempt = { gen, members: members.map((w) => w.id), server: undefined };
    this.setDeadline(this.limits.reformTimeoutMs, 'the elastic timeout (--elastic-timeout)');
    let server: RendezvousServer | undefined;
    if (members.length > 1) {
      try {
        server = await this.hooks.listen(members.length, token, this.limits.reformTimeoutMs);
      } catch (e) {
        this.stopJobWith(`elastic: cannot serve the rendezvous of generation ${gen}: ${(e as Error).message}`);
        return;
      }
      this.servers.push(server);
      if (epoch !== this.epoch) {
        void server.close().catch(() => undefined);
        return;
      }
      this.attempt.server = server;
    }
    const localSize = new Map<string, number>();
    for (const w of members) localSize.set(w.host, Math.max(localSize.get(w.host) ?? 0, w.localRank + 1));
    members.forEach((w, rank) => {
      w.asked = undefined;
      const addr = server ? formatHostPort(this.hooks.advertiseFor(w.host), server.port) : formatHostPort('127.0.0.1', 1);
      this.control().sendWorld(w.id, { gen, rank, size: members.length, localRank: w.localRank, localSize: localSize.get(w.host)!, addr, token });
    });
    this.hooks.verbose(`elastic: generation ${gen}: ${members.map((w, r) => `rank ${r} = worker ${w.id} on ${w.host}`).join(', ')}`);
    const formed = (): void => {
      if (epoch !== this.epoch) return;
      const ms = Date.now() - (this.brokenAt ?? this.startedAt);
      this.current = { gen, members: members.map((w) => w.id) };
      this.attempt = undefined;
      this.phase = 'running';
      this.epoch++;
      if (this.deadline) clearTimeout(this.deadline);
      this.reformations.push({ gen, size: members.length, ms, reason: this.reason });
      const lostNow = this.lost.length;
      this.hooks.say(
        `elastic: generation ${gen} formed with ${members.length} rank(s) ${gen === 0 ? `after ${ms} ms` : `${ms} ms after ${this.reason}`}${gen > 0 ? ` (${lostNow} worker(s) lost so far)` : ''}`,
      );
      this.brokenAt = undefined;
      // Workers that asked meanwhile (joiners) are told the new world will take them at a commit.
      if (this.waitingCount() > 0) this.announceJoiners(`${this.waitingCount()} worker(s) wait to join`);
      // Close this generation's rendezvous once its table is surely read.
      if (server) setTimeout(() => void server.close().catch(() => undefined), 2_000).unref();
    };
    if (!server) formed();
    else {
      server.table.then(formed, (e: Error) => {
        if (epoch === this.epoch) this.breakWorld(`the rendezvous of generation ${gen} failed: ${e.message.replace(/^ringtrain: /, '')}`);
      });
    }
  }

  private stopJob(chosen: number, live: number): void {
    const lost = this.lost.map((l) => `worker ${l.id} on ${l.host}: ${l.why}`).join('; ');
    this.stopJobWith(
      `elastic: only ${chosen} rank(s) left${live > chosen ? ` (${live} live)` : ''}, below --min-np ${this.limits.minNp}; stopping the job` +
        (lost ? ` (lost: ${lost})` : ''),
    );
  }

  private stopJobWith(message: string): void {
    this.failed = true;
    this.phase = 'over';
    this.epoch++;
    if (this.deadline) clearTimeout(this.deadline);
    this.control().broadcast({ t: 'stop', reason: message.replace(/^elastic: /, '') });
    this.hooks.fail(message.replace(/^elastic: /, 'elastic: '));
  }
}
