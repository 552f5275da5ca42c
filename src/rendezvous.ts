/**
 * Rendezvous: every rank tells one server where its ring listener is, and gets back the table of all
 * ranks once all have joined. Served by the launcher, or by rank 0 when there is none.
 *
 * Wire: newline-delimited JSON, at most MAX_LINE bytes a line. The server opens with a nonce and
 * its generation; the client's join carries HMAC(token, nonce, rank, size, generation), the table
 * carries HMAC(token, client nonce, table digest), so each side proves it knows the job token
 * without sending it.
 *
 * Generations: a process may close its communicator and init() again (or hold several); each
 * rendezvous it completes with a job is one generation, counted from 0. Every rank's n-th init()
 * meets the others' n-th at generation n, so a join left over from an earlier round can never be
 * counted in a later one. A server that is done with its round (rank 0's, between two init()s)
 * answers `retry` instead of a hello; the launcher's server serves one generation after the other.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { formatHostPort, type HostPort } from './address.js';
import { RingtrainError } from './errors.js';
import { hostnameIdentity } from './host-identity.js';
import { jobMac as mac, macEqual, newNonce } from './job-auth.js';
import { SETTINGS, settingsDisagreement, type JobSettings } from './settings.js';
import type { PeerInfo } from './types.js';

const MAX_LINE = 64 * 1024;
/** A connection must send a valid join this soon after connecting, or it is dropped. */
const HANDSHAKE_MS = 5000;
const PROTOCOL = 'ringtrain-rdv/2';
/** How long a client waits before asking again after a `retry`. */
const RETRY_MS = 50;

export interface JoinInfo extends PeerInfo {
  size: number;
  localSize: number | undefined;
  /** This rank's job-wide settings; the server refuses a job whose ranks disagree. */
  settings?: JobSettings;
}

/** The job-wide settings of a join, kept only when they are a small record of numbers. */
function joinSettings(v: unknown): JobSettings | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const out: JobSettings = {};
  for (const spec of SETTINGS) {
    const x = (v as Record<string, unknown>)[spec.name];
    if (spec.scope === 'job' && isInt(x, 0)) out[spec.name] = x;
  }
  return out;
}

function tableDigest(peers: readonly PeerInfo[]): string {
  return createHash('sha256').update(JSON.stringify(peers)).digest('hex');
}

/** Splits a socket's bytes into bounded lines; a longer line is a protocol error. */
function lineReader(socket: net.Socket, onLine: (line: string) => void, onError: (err: Error) => void): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    // A handler may drop the connection: then the rest of the burst is not looked at.
    while (!socket.destroyed && (nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      onLine(line);
    }
    if (!socket.destroyed && buffered.length > MAX_LINE) onError(new Error(`line longer than ${MAX_LINE} bytes`));
  });
}

function parseObject(line: string): Record<string, unknown> {
  const value: unknown = JSON.parse(line);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
  return value as Record<string, unknown>;
}

function isInt(v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

function isText(v: unknown, maxLength = 1024): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= maxLength;
}

export interface RendezvousServerOptions {
  size: number;
  token: string;
  /** Address to listen on; port 0 picks one. */
  host: string;
  port: number;
  /** All ranks must have joined within this long after listen, or `table` rejects naming who is missing. */
  timeoutMs: number;
  onJoin?: (info: JoinInfo, generation: number) => void;
  /**
   * Serve a new generation of joins after each completed one, until close() (the launcher: ranks
   * may close their communicator and init() again). Default: one round, then `retry` to everyone.
   */
  reusable?: boolean;
  /** The generation served first (rank 0 serves its n-th init()'s rendezvous as generation n). Default 0. */
  generation?: number;
  /** Reusable servers: a generation after the first failed (its ranks were told why). */
  onRoundFailure?: (err: RingtrainError, generation: number) => void;
  /**
   * Checks each join against those before it (the launcher compares host identities with its
   * layout); an error returned fails the whole rendezvous, before any table is sent.
   */
  checkJoin?: (info: JoinInfo, joined: readonly JoinInfo[]) => RingtrainError | undefined;
  /** Rejected connections (bad token, garbage) are reported here and dropped; the job goes on. */
  onReject?: (remote: string, reason: string) => void;
}

/** Serves one job's rendezvous. */
export class RendezvousServer {
  readonly port: number;
  readonly host: string;
  /** Resolves with every rank's info, in rank order, once all have joined. */
  readonly table: Promise<PeerInfo[]>;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private joined = new Map<number, { info: JoinInfo; socket: net.Socket; clientNonce: string }>();
  private timer: NodeJS.Timeout | undefined;
  private settled = false;
  /** The round being gathered now (see the file comment). */
  private generation = 0;
  /** Reusable servers: ranks whose process is gone, and how it went (see departed()). */
  private readonly departedRanks = new Map<number, string>();

  private constructor(server: net.Server, private readonly options: RendezvousServerOptions, table: {
    promise: Promise<PeerInfo[]>;
    resolve: (t: PeerInfo[]) => void;
    reject: (e: Error) => void;
  }) {
    this.server = server;
    const address = server.address() as net.AddressInfo;
    this.port = address.port;
    this.host = options.host;
    this.table = table.promise;
    this.table.catch(() => undefined);
    this.generation = options.generation ?? 0;
    this.timer = setTimeout(() => {
      const missing: number[] = [];
      for (let r = 0; r < options.size; r++) if (!this.joined.has(r)) missing.push(r);
      const err = new RingtrainError(
        'ERR_RINGTRAIN_TIMEOUT',
        `ringtrain: rendezvous timed out after ${options.timeoutMs / 1000}s: rank(s) ${missing.join(', ')} of ${options.size} never joined`,
      );
      this.fail(err, table.reject);
    }, options.timeoutMs);
    this.timer.unref();
    server.on('connection', (socket) => this.accept(socket, table.resolve, table.reject));
  }

  static async listen(options: RendezvousServerOptions): Promise<RendezvousServer> {
    let resolve!: (t: PeerInfo[]) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<PeerInfo[]>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const server = net.createServer();
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen({ host: options.host, port: options.port, exclusive: true }, () => {
        server.off('error', rej);
        res();
      });
    });
    return new RendezvousServer(server, options, { promise, resolve, reject });
  }

  private reject(socket: net.Socket, reason: string): void {
    const remote = formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
    this.options.onReject?.(remote, reason);
    if (socket.writable) socket.end(JSON.stringify({ t: 'error', message: reason }) + '\n');
    socket.destroy();
  }

  private accept(socket: net.Socket, resolve: (t: PeerInfo[]) => void, reject: (e: Error) => void): void {
    if (this.settled) {
      // Done with its round: a rank that is already at its next init() comes back later (to the
      // next server rank 0 starts), instead of failing on a closed connection.
      socket.on('error', () => undefined);
      socket.end(JSON.stringify({ t: 'retry', message: 'this rendezvous round is over' }) + '\n');
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    // Bounded: when full, the oldest connection that has not joined makes room (idle strangers
    // cannot lock the ranks out), and each one gets HANDSHAKE_MS to join.
    if (this.sockets.size >= Math.max(64, this.options.size * 4)) {
      const joinedSockets = new Set([...this.joined.values()].map((j) => j.socket));
      const oldest = [...this.sockets].find((x) => !joinedSockets.has(x));
      if (oldest) this.reject(oldest, 'too many connections: dropping the oldest one that has not joined');
      else {
        socket.destroy();
        return;
      }
    }
    this.sockets.add(socket);
    const handshakeTimer = setTimeout(() => {
      if (![...this.joined.values()].some((j) => j.socket === socket)) this.reject(socket, `did not join within ${HANDSHAKE_MS / 1000}s`);
    }, HANDSHAKE_MS);
    handshakeTimer.unref();
    socket.on('close', () => {
      clearTimeout(handshakeTimer);
      this.sockets.delete(socket);
      for (const [rank, entry] of this.joined) {
        if (entry.socket === socket && !this.settled) this.joined.delete(rank); // may rejoin
      }
    });
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    const nonce = newNonce();
    let answered = false;
    const generation = this.generation;
    socket.write(JSON.stringify({ t: 'hello', protocol: PROTOCOL, nonce, generation }) + '\n');
    lineReader(
      socket,
      (line) => {
        if (answered) {
          this.reject(socket, 'unexpected data after join');
          return;
        }
        answered = true;
        let msg: Record<string, unknown>;
        try {
          msg = parseObject(line);
        } catch {
          this.reject(socket, 'malformed join (not JSON)');
          return;
        }
        this.onJoin(socket, nonce, generation, msg, resolve, reject);
      },
      (err) => this.reject(socket, err.message),
    );
  }

  private onJoin(
    socket: net.Socket,
    nonce: string,
    helloGeneration: number,
    m: Record<string, unknown>,
    resolve: (t: PeerInfo[]) => void,
    reject: (e: Error) => void,
  ): void {
    const size = this.options.size;
    const generation = m.generation ?? 0;
    if (m.t !== 'join' || !isInt(m.rank, 0) || !isInt(m.size, 1) || !isText(m.mac, 128) || !isText(m.nonce, 128) || !isInt(generation, 0)) {
      this.reject(socket, 'malformed join');
      return;
    }
    if (!macEqual(m.mac, mac(this.options.token, 'join', nonce, m.rank, m.size, generation))) {
      this.reject(socket, 'authentication failed (wrong or missing RINGTRAIN_TOKEN)');
      return;
    }
    if (generation !== this.generation || helloGeneration !== this.generation) {
      // A join from another round (a stale one, or one that raced a round's end) is never counted.
      const msg =
        generation < this.generation
          ? `rank ${m.rank} joined for init() #${generation + 1}, but this job's ranks are at init() #${this.generation + 1}: every rank must call init() the same number of times`
          : `rank ${m.rank} joined for init() #${generation + 1} while this rendezvous serves init() #${this.generation + 1}`;
      this.reject(socket, msg);
      return;
    }
    if (m.size !== size) {
      const err = `rank ${m.rank} believes the world has ${m.size} ranks, but this job has ${size}`;
      this.reject(socket, err);
      this.fail(new RingtrainError('ERR_RINGTRAIN_CONTRACT', `ringtrain: ${err}`), reject);
      return;
    }
    if (m.rank >= size || !isText(m.host, 256) || !isInt(m.port, 1, 65535) || !isInt(m.pid, 0) || !isInt(m.localRank, 0)) {
      this.reject(socket, 'malformed join (rank, host, port, pid or localRank out of range)');
      return;
    }
    const hostname = isText(m.hostname, 256) ? m.hostname : m.host;
    // Joins from before host identities are placed by host name.
    const hostId = isText(m.hostId, 512) ? m.hostId : hostnameIdentity(hostname);
    const existing = this.joined.get(m.rank);
    if (existing) {
      const err = `two processes claim rank ${m.rank}: ${existing.info.hostname} (pid ${existing.info.pid}) and ${hostname} (pid ${m.pid})`;
      this.reject(socket, err);
      this.fail(new RingtrainError('ERR_RINGTRAIN_CONTRACT', `ringtrain: ${err}`), reject);
      return;
    }
    const info: JoinInfo = {
      rank: m.rank,
      host: m.host,
      port: m.port,
      hostname,
      hostId,
      localRank: m.localRank,
      pid: m.pid,
      size: m.size,
      localSize: isInt(m.localSize, 1) ? m.localSize : undefined,
      settings: joinSettings(m.settings),
    };
    const layoutError = this.options.checkJoin?.(info, [...this.joined.values()].map((j) => j.info));
    if (layoutError) {
      this.reject(socket, layoutError.message.replace(/^ringtrain: /, ''));
      this.fail(layoutError, reject);
      return;
    }
    this.joined.set(m.rank, { info, socket, clientNonce: m.nonce });
    this.options.onJoin?.(info, this.generation);
    if (this.joined.size < size) {
      this.failIfDeparted();
      return;
    }
    const disagreement = settingsDisagreement(Array.from({ length: size }, (_, r) => this.joined.get(r)!.info.settings));
    if (disagreement) this.fail(new RingtrainError('ERR_RINGTRAIN_MISMATCH', `ringtrain: ${disagreement}`), reject);
    else this.complete(resolve);
  }

  /**
   * Reusable servers: `rank`'s process is gone (`how`, e.g. "rank 1 exited with code 0"). After the
   * first round, a round it has not joined can never complete: the ranks waiting in it are told so
   * now rather than at their timeout.
   */
  departed(rank: number, how: string): void {
    this.departedRanks.set(rank, how);
    this.failIfDeparted();
  }

  private failIfDeparted(): void {
    if (!this.options.reusable || this.settled || this.generation === (this.options.generation ?? 0) || this.joined.size === 0) return;
    const gone = [...this.departedRanks].filter(([rank]) => !this.joined.has(rank)).map(([, how]) => how);
    if (gone.length === 0) return;
    const err = new RingtrainError(
      'ERR_RINGTRAIN_RENDEZVOUS',
      `ringtrain: init() #${this.generation + 1} cannot complete: ${gone.join('; ')} without calling it (every rank must call init() the same number of times)`,
    );
    this.fail(err, () => undefined);
  }

  private complete(resolve: (t: PeerInfo[]) => void): void {
    const peers: PeerInfo[] = [];
    for (let r = 0; r < this.options.size; r++) {
      const { info } = this.joined.get(r)!;
      peers.push({
        rank: info.rank,
        host: info.host,
        port: info.port,
        hostname: info.hostname,
        hostId: info.hostId,
        localRank: info.localRank,
        pid: info.pid,
      });
    }
    const digest = tableDigest(peers);
    for (const { socket, clientNonce } of this.joined.values()) {
      socket.end(JSON.stringify({ t: 'table', peers, mac: mac(this.options.token, 'table', clientNonce, digest) }) + '\n');
    }
    if (this.timer) clearTimeout(this.timer);
    this.nextRound();
    resolve(peers);
  }

  /** A reusable server starts gathering the next generation; any other one is done. */
  private nextRound(): void {
    if (!this.options.reusable) {
      this.settled = true;
      return;
    }
    this.joined = new Map();
    this.generation += 1;
  }

  private fail(err: RingtrainError, reject: (e: Error) => void): void {
    if (this.settled) return;
    if (this.timer) clearTimeout(this.timer);
    for (const { socket } of this.joined.values()) {
      if (socket.writable) socket.end(JSON.stringify({ t: 'error', message: err.message, code: err.code }) + '\n');
    }
    const generation = this.generation;
    if (generation === (this.options.generation ?? 0) || !this.options.reusable) {
      this.settled = true;
      reject(err);
      return;
    }
    this.joined = new Map();
    this.options.onRoundFailure?.(err, generation);
  }

  /** Stops listening. Connections that were sent the table get a moment to read it before they are cut. */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    const closing = new Promise<void>((res) => this.server.close(() => res()));
    const pending = [...this.sockets].map(
      (s) =>
        new Promise<void>((res) => {
          if (s.destroyed) return res();
          const cut = setTimeout(() => s.destroy(), 2000);
          s.once('close', () => {
            clearTimeout(cut);
            res();
          });
          if (!s.writableEnded) s.destroy();
        }),
    );
    await Promise.all([closing, ...pending]);
  }
}

/** A client's connection to the rendezvous, open from connect() until join() returns the table. */
export class RendezvousClient {
  private hello: { nonce: string; generation: number } | undefined;

  private constructor(
    private readonly socket: net.Socket,
    private readonly lines: AsyncIterator<string>,
    private readonly deadline: number,
    private readonly where: string,
  ) {}

  /** Local address of this connection: the address that routes to the rendezvous, advertised when no interface is named. */
  get localAddress(): string {
    return this.socket.localAddress ?? '127.0.0.1';
  }

  /** Connects, retrying refused connections (the server may not be up yet) until `timeoutMs` runs out. */
  static async connect(addr: HostPort, timeoutMs: number): Promise<RendezvousClient> {
    const deadline = Date.now() + timeoutMs;
    const where = formatHostPort(addr.host, addr.port);
    let lastError = 'no attempt';
    let delay = 50;
    while (Date.now() < deadline) {
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect({ host: addr.host, port: addr.port });
          const timer = setTimeout(() => {
            s.destroy();
            reject(new Error('connect timed out'));
          }, Math.max(1, Math.min(5000, deadline - Date.now())));
          s.once('connect', () => {
            clearTimeout(timer);
            resolve(s);
          });
          s.once('error', (e) => {
            clearTimeout(timer);
            reject(e);
          });
        });
        socket.setNoDelay(true);
        return new RendezvousClient(socket, RendezvousClient.lines(socket), deadline, where);
      } catch (e) {
        lastError = (e as Error).message;
        await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))));
        delay = Math.min(delay * 2, 500);
      }
    }
    throw new RingtrainError(
      'ERR_RINGTRAIN_TIMEOUT',
      `ringtrain: could not reach the rendezvous at ${where} within ${timeoutMs / 1000}s (last error: ${lastError}); is rank 0 (or the launcher) running, and RINGTRAIN_ADDR right?`,
    );
  }

  /**
   * Connects to a server that serves `generation` and reads its hello, coming back while the
   * server says its round is over or serves an earlier generation (rank 0's server of the previous
   * init(), about to close), until `timeoutMs` runs out.
   */
  static async open(addr: HostPort, timeoutMs: number, generation: number): Promise<RendezvousClient> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const client = await RendezvousClient.connect(addr, Math.max(1, deadline - Date.now()));
      const hello = await client.readHello();
      if (hello && hello.generation === generation) return client;
      client.socket.destroy();
      if (hello && hello.generation > generation) {
        throw new RingtrainError(
          'ERR_RINGTRAIN_RENDEZVOUS',
          `ringtrain: this process is at init() #${generation + 1} of this job, but the rendezvous at ${client.where} already serves init() #${hello.generation + 1}: every rank must call init() the same number of times, in the same order`,
        );
      }
      if (Date.now() + RETRY_MS >= deadline) {
        throw new RingtrainError(
          'ERR_RINGTRAIN_TIMEOUT',
          `ringtrain: the rendezvous at ${client.where} was still serving an earlier init() after ${timeoutMs / 1000}s; this process is at init() #${generation + 1}: every rank must call init() the same number of times`,
        );
      }
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }

  /** Reads the server's hello; undefined when the server says to come back later. */
  private async readHello(): Promise<{ nonce: string; generation: number } | undefined> {
    const hello = await this.read('the server hello');
    if (hello.t === 'retry') return undefined;
    if (hello.t !== 'hello' || hello.protocol !== PROTOCOL || !isText(hello.nonce, 128)) {
      throw new RingtrainError('ERR_RINGTRAIN_RENDEZVOUS', `ringtrain: ${this.where} does not speak ${PROTOCOL}`);
    }
    this.hello = { nonce: hello.nonce, generation: isInt(hello.generation, 0) ? hello.generation : 0 };
    return this.hello;
  }

  private static lines(socket: net.Socket): AsyncIterator<string> {
    const queue: string[] = [];
    const waiters: { resolve: (r: IteratorResult<string>) => void; reject: (e: Error) => void }[] = [];
    let failure: Error | undefined;
    let ended = false;
    const flush = (): void => {
      while (waiters.length > 0 && (queue.length > 0 || failure || ended)) {
        const w = waiters.shift()!;
        if (queue.length > 0) w.resolve({ value: queue.shift()!, done: false });
        else if (failure) w.reject(failure);
        else w.resolve({ value: undefined, done: true });
      }
    };
    lineReader(
      socket,
      (line) => {
        queue.push(line);
        flush();
      },
      (err) => {
        failure = err;
        socket.destroy();
        flush();
      },
    );
    socket.on('error', (e) => {
      failure ??= e;
      flush();
    });
    socket.on('close', () => {
      ended = true;
      flush();
    });
    return {
      next: () =>
        new Promise<IteratorResult<string>>((resolve, reject) => {
          waiters.push({ resolve, reject });
          flush();
        }),
    };
  }

  private async read(what: string): Promise<Record<string, unknown>> {
    const remaining = this.deadline - Date.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new RingtrainError('ERR_RINGTRAIN_TIMEOUT', `ringtrain: rendezvous at ${this.where} timed out waiting for ${what}`)),
        Math.max(1, remaining),
      );
    });
    try {
      const r = await Promise.race([this.lines.next(), timeout]);
      if (r.done) throw new RingtrainError('ERR_RINGTRAIN_RENDEZVOUS', `ringtrain: rendezvous at ${this.where} closed the connection while waiting for ${what}`);
      let msg: Record<string, unknown>;
      try {
        msg = parseObject(r.value);
      } catch {
        throw new RingtrainError('ERR_RINGTRAIN_RENDEZVOUS', `ringtrain: rendezvous at ${this.where} sent something that is not a ringtrain message (waiting for ${what}): is another program listening there?`);
      }
      if (msg.t === 'error') {
        // A job the server refused as inconsistent keeps that code; anything else is the rendezvous'.
        const code = msg.code === 'ERR_RINGTRAIN_MISMATCH' ? msg.code : 'ERR_RINGTRAIN_RENDEZVOUS';
        throw new RingtrainError(code, `ringtrain: rendezvous at ${this.where} refused: ${String(msg.message)}`);
      }
      return msg;
    } catch (e) {
      if (e instanceof RingtrainError) throw e;
      throw new RingtrainError('ERR_RINGTRAIN_RENDEZVOUS', `ringtrain: rendezvous at ${this.where}: ${(e as Error).message} (waiting for ${what})`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends this rank's info for `generation` (see the file comment) and waits for the full table. */
  async join(info: JoinInfo, token: string, generation = 0): Promise<PeerInfo[]> {
    try {
      const hello = this.hello ?? (await this.readHello());
      if (hello === undefined) {
        throw new RingtrainError('ERR_RINGTRAIN_RENDEZVOUS', `ringtrain: the rendezvous at ${this.where} is done with its round (use RendezvousClient.open to wait for the next)`);
      }
      const clientNonce = newNonce();
      this.socket.write(
        JSON.stringify({
          t: 'join',
          ...info,
          generation,
          nonce: clientNonce,
          mac: mac(token, 'join', hello.nonce, info.rank, info.size, generation),
        }) + '\n',
      );
      const table = await this.read(`the other ${info.size - 1} rank(s) to join`);
      if (table.t !== 'table' || !Array.isArray(table.peers) || !isText(table.mac, 128)) {
        throw new RingtrainError('ERR_RINGTRAIN_RENDEZVOUS', `ringtrain: malformed table from ${this.where}`);
      }
      const peers = table.peers as PeerInfo[];
      if (!macEqual(table.mac, mac(token, 'table', clientNonce, tableDigest(peers)))) {
        throw new RingtrainError('ERR_RINGTRAIN_AUTH', `ringtrain: the rendezvous at ${this.where} could not prove it knows the job token`);
      }
      if (peers.length !== info.size || peers.some((p, i) => p.rank !== i)) {
        throw new RingtrainError('ERR_RINGTRAIN_RENDEZVOUS', `ringtrain: inconsistent table from ${this.where}`);
      }
      return peers;
    } finally {
      this.socket.destroy();
    }
  }
}
