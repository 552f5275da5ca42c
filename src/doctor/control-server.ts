/**
 * The coordinator's end of the agents' control connections: listens where the launcher would serve
 * the rendezvous (same address plan, same --port-range), so an agent that reaches it shows that the
 * host's ranks could join; checks each agent's token proof, and carries requests and replies by id.
 */
import net from 'node:net';
import { macEqual, newNonce } from '../job-auth.js';
import { listenInRange } from '../launcher/rendezvous-address.js';
import { DOCTOR_PROTOCOL, type AgentRequest, type ControlReply, type ControlRequest } from './agent-messages.js';
import { LineSocket, type Message } from './line-socket.js';
import { agentMac, welcomeMac } from './proofs.js';

const HANDSHAKE_MS = 5_000;

/** One agent's control connection. */
export class AgentSession {
  private nextId = 1;
  private readonly pending = new Map<number, (m: Message) => void>();
  private readyMessage: Message | undefined;
  private readyWaiter: ((m: Message) => void) | undefined;
  private closed = false;

  constructor(readonly host: string, private readonly conn: LineSocket) {
    void this.readLoop();
  }

  private async readLoop(): Promise<void> {
    try {
      for (;;) {
        const m = await this.conn.next(2_147_483_647, 'message');
        if (m.t === 'ready') {
          this.readyMessage = m;
          this.readyWaiter?.(m);
        } else if (typeof m.id === 'number') this.pending.get(m.id)?.(m);
      }
    } catch {
      this.closed = true;
      for (const resolve of this.pending.values()) resolve({ t: 'closed' });
      this.readyWaiter?.({ t: 'closed' });
    }
  }

  /** The agent's `ready` (address and listener ports), or undefined when it does not come in time. */
  ready(timeoutMs: number): Promise<Extract<ControlReply, { t: 'ready' }> | undefined> {
    const as = (m: Message | undefined): Extract<ControlReply, { t: 'ready' }> | undefined =>
      m?.t === 'ready' ? (m as unknown as Extract<ControlReply, { t: 'ready' }>) : undefined;
    if (this.readyMessage || this.closed) return Promise.resolve(as(this.readyMessage));
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      this.readyWaiter = (m) => {
        clearTimeout(timer);
        resolve(as(m));
      };
    });
  }

  /** Sends a request; resolves with its reply, or undefined when none comes within `timeoutMs`. */
  request<R extends ControlReply>(request: AgentRequest, timeoutMs: number): Promise<R | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.pending.set(id, (m) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(m.t === 'closed' ? undefined : (m as unknown as R));
      });
      const message: ControlRequest = { ...request, id };
      this.conn.send(message);
    });
  }

  bye(): void {
    this.conn.send({ t: 'bye' });
    this.conn.socket.end();
  }
}

export class ControlServer {
  private readonly sessions = new Map<string, AgentSession>();
  private readonly waiters = new Map<string, (s: AgentSession) => void>();
  private readonly sockets = new Set<net.Socket>();
  /** Connections turned away (wrong token, unknown host), for the report. */
  readonly rejected: string[] = [];

  private constructor(private readonly server: net.Server, private readonly token: string, private readonly hosts: ReadonlySet<string>) {
    server.on('connection', (socket) => this.accept(socket));
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  static async listen(host: string, range: readonly [number, number] | undefined, token: string, hosts: readonly string[]): Promise<ControlServer> {
    const listenOn = (bind: string, port: number): Promise<net.Server> =>
      new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once('error', reject);
        server.listen({ host: bind, port, exclusive: true }, () => {
          server.off('error', reject);
          resolve(server);
        });
      });
    const server = await listenInRange(
      async (port) => {
        try {
          return await listenOn(host, port);
        } catch (e) {
          if (host === '::' && (e as NodeJS.ErrnoException).code === 'EAFNOSUPPORT') return listenOn('0.0.0.0', port);
          throw e;
        }
      },
      range,
      `the doctor's stand-in for the rendezvous on ${host}`,
    );
    return new ControlServer(server, token, new Set(hosts));
  }

  /** The session of `host` once its agent has connected and proved the token; undefined after `timeoutMs`. */
  session(host: string, timeoutMs: number): Promise<AgentSession | undefined> {
    const s = this.sessions.get(host);
    if (s) return Promise.resolve(s);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(host);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.set(host, (session) => {
        clearTimeout(timer);
        resolve(session);
      });
    });
  }

  close(): void {
    this.server.close();
    for (const s of this.sockets) s.destroy();
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    const conn = new LineSocket(socket);
    const nonce = newNonce();
    conn.send({ t: 'hello', protocol: DOCTOR_PROTOCOL, nonce });
    void conn.next(HANDSHAKE_MS, 'agent greeting').then(
      (m) => {
        const host = typeof m.host === 'string' ? m.host : '';
        const from = `${socket.remoteAddress ?? '?'}`;
        if (m.t !== 'agent' || typeof m.mac !== 'string' || typeof m.nonce !== 'string' || !macEqual(m.mac, agentMac(this.token, nonce, host))) {
          this.rejected.push(`${from}: not this doctor's agent (wrong token)`);
          conn.close();
          return;
        }
        if (!this.hosts.has(host) || this.sessions.has(host)) {
          this.rejected.push(`${from}: unexpected agent for '${host}'`);
          conn.close();
          return;
        }
        conn.send({ t: 'welcome', mac: welcomeMac(this.token, m.nonce) });
        const session = new AgentSession(host, conn);
        this.sessions.set(host, session);
        this.waiters.get(host)?.(session);
        this.waiters.delete(host);
      },
      () => conn.close(),
    );
  }
}
