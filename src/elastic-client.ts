/**
 * A rank's side of the elastic control channel (see elastic-protocol.ts). One per process, made
 * on first use when the launcher said the job is elastic; it outlives every communicator, so a rank
 * can ask for its next world after its current one broke.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { formatHostPort, parseHostPort, type HostPort } from './address.js';
import {
  DEFAULT_ELASTIC_TIMEOUT_S,
  ELASTIC_ADDR_ENV,
  ELASTIC_ID_ENV,
  ELASTIC_PROTOCOL,
  ELASTIC_TIMEOUT_ENV,
  elasticMac,
  macMatches,
  worldDigest,
  type WorldAssignment,
} from './elastic-protocol.js';
import { RingtrainError } from './errors.js';

const MAX_LINE = 64 * 1024;

function elasticError(message: string): RingtrainError {
  return new RingtrainError('ERR_RINGTRAIN_ELASTIC', `ringtrain: elastic: ${message}`);
}

export class ElasticClient {
  /** Generation of the last world handed out by nextWorld(); -1 before the first. */
  gen = -1;
  private socket: net.Socket | undefined;
  private connecting: Promise<void> | undefined;
  private nonce = randomBytes(16).toString('hex');
  private worlds: WorldAssignment[] = [];
  private waiter: (() => void) | undefined;
  private failure: RingtrainError | undefined;
  private waitingToJoin = 0;
  private readonly aborted = new Map<number, string>();
  private abortWaiters: { gen: number; reject: (e: Error) => void }[] = [];

  constructor(
    private readonly addr: HostPort,
    private readonly id: number,
    private readonly token: string,
    readonly timeoutMs: number,
  ) {}

  /** Workers are waiting to join: the ranks should re-form at their next commit. */
  get joinPending(): boolean {
    return this.waitingToJoin > 0;
  }

  /** Tells the launcher this rank has left world `gen` (or never had one) and waits for the next. */
  async nextWorld(reason: string): Promise<WorldAssignment> {
    await this.connect();
    const after = this.gen;
    this.send({ t: 'next', after, reason });
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const w = this.worlds.find((x) => x.gen > after);
      if (w) {
        this.worlds = this.worlds.filter((x) => x.gen > w.gen);
        this.gen = w.gen;
        this.waitingToJoin = 0;
        return w;
      }
      if (this.failure) throw this.failure;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw elasticError(`no new world from the launcher at ${formatHostPort(this.addr.host, this.addr.port)} within ${this.timeoutMs / 1000}s`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  /** Rejects (ERR_RINGTRAIN_RESET) once the launcher gives world `gen` up; never resolves. */
  abandoned(gen: number): Promise<never> {
    const p = new Promise<never>((_, reject) => {
      const why = this.aborted.get(gen);
      if (why !== undefined) reject(this.abortError(gen, why));
      else this.abortWaiters.push({ gen, reject });
    });
    // Only looked at while connecting: an abort at any other moment must not be an unhandled rejection.
    p.catch(() => undefined);
    return p;
  }

  private abortError(gen: number, why: string): RingtrainError {
    return new RingtrainError('ERR_RINGTRAIN_RESET', `ringtrain: elastic: the launcher gave generation ${gen} up: ${why}`);
  }

  private wake(): void {
    this.waiter?.();
  }

  private send(message: object): void {
    this.socket?.write(`${JSON.stringify(message)}\n`);
  }

  private connect(): Promise<void> {
    this.connecting ??= new Promise<void>((resolve, reject) => {
      const where = formatHostPort(this.addr.host, this.addr.port);
      const socket = net.connect({ host: this.addr.host, port: this.addr.port });
      this.socket = socket;
      socket.setNoDelay(true);
      socket.setEncoding('utf8');
      const timer = setTimeout(() => {
        socket.destroy();
        reject(elasticError(`the launcher's control server at ${where} did not answer within ${this.timeoutMs / 1000}s`));
      }, this.timeoutMs);
      let buffered = '';
      let greeted = false;
      socket.on('data', (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          let m: Record<string, unknown>;
          try {
            m = JSON.parse(line) as Record<string, unknown>;
          } catch {
            this.failure = elasticError(`${where} sent something that is not a ringtrain message`);
            socket.destroy();
            return;
          }
          if (!greeted) {
            if (m.t !== 'hello' || m.protocol !== ELASTIC_PROTOCOL || typeof m.nonce !== 'string') {
              this.failure = elasticError(`${where} does not speak ${ELASTIC_PROTOCOL}`);
              socket.destroy();
              reject(this.failure);
              return;
            }
            greeted = true;
            this.send({ t: 'hello', id: this.id, nonce: this.nonce, mac: elasticMac(this.token, 'hello', m.nonce, this.id) });
            clearTimeout(timer);
            // The channel must not keep a finished rank alive; waits in nextWorld hold their own timer.
            socket.unref();
            resolve();
            continue;
          }
          this.onMessage(m);
        }
        if (buffered.length > MAX_LINE) socket.destroy();
      });
      socket.on('error', (e) => {
        this.failure ??= elasticError(`lost the launcher's control server at ${where}: ${e.message}`);
        clearTimeout(timer);
        reject(this.failure);
        this.wake();
      });
      socket.on('close', () => {
        this.failure ??= elasticError(`the launcher at ${where} closed the control connection (the job is over or the launcher is gone)`);
        clearTimeout(timer);
        reject(this.failure);
        this.wake();
      });
    });
    return this.connecting;
  }

  private onMessage(m: Record<string, unknown>): void {
    if (m.t === 'world') {
      const w = m as unknown as WorldAssignment & { mac: string };
      if (typeof w.mac !== 'string' || !macMatches(w.mac, elasticMac(this.token, 'world', this.nonce, worldDigest(w)))) {
        this.failure = new RingtrainError('ERR_RINGTRAIN_AUTH', 'ringtrain: elastic: a world assignment failed authentication');
        this.socket?.destroy();
      } else {
        this.worlds.push({ gen: w.gen, rank: w.rank, size: w.size, localRank: w.localRank, localSize: w.localSize, addr: w.addr, token: w.token });
      }
    } else if (m.t === 'grow' && typeof m.waiting === 'number') {
      this.waitingToJoin = m.waiting;
    } else if (m.t === 'abort' && typeof m.gen === 'number') {
      const why = String(m.reason);
      this.aborted.set(m.gen, why);
      for (const w of this.abortWaiters.filter((x) => x.gen === m.gen)) w.reject(this.abortError(m.gen, why));
      this.abortWaiters = this.abortWaiters.filter((x) => x.gen !== m.gen);
    } else if (m.t === 'stop') {
      this.failure = elasticError(String(m.reason));
    }
    this.wake();
  }
}

let client: ElasticClient | undefined;

/** The process's elastic client, or undefined when the job is not elastic. */
export function elasticClient(env: NodeJS.ProcessEnv = process.env): ElasticClient | undefined {
  if (client) return client;
  const addrText = env[ELASTIC_ADDR_ENV];
  if (!addrText) return undefined;
  const id = Number(env[ELASTIC_ID_ENV]);
  if (!Number.isInteger(id) || id < 0) throw elasticError(`${ELASTIC_ID_ENV}='${env[ELASTIC_ID_ENV] ?? ''}' is not a worker id`);
  const timeoutMs = Number(env[ELASTIC_TIMEOUT_ENV] ?? DEFAULT_ELASTIC_TIMEOUT_S * 1000);
  client = new ElasticClient(parseHostPort(addrText, ELASTIC_ADDR_ENV), id, env.RINGTRAIN_TOKEN ?? '', timeoutMs > 0 ? timeoutMs : DEFAULT_ELASTIC_TIMEOUT_S * 1000);
  return client;
}
