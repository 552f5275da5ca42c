/**
 * The launcher's end of the elastic control channel (protocol in ../elastic-protocol.ts): accepts
 * one authenticated connection per worker and passes its requests to the coordinator. Owns only
 * sockets; what to answer is the coordinator's business.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { formatHostPort } from '../address.js';
import {
  ELASTIC_PROTOCOL,
  elasticMac,
  macMatches,
  worldDigest,
  type LauncherMessage,
  type WorldAssignment,
} from '../elastic-protocol.js';
import { RingtrainError } from '../errors.js';

const MAX_LINE = 64 * 1024;
const HANDSHAKE_MS = 10_000;

export interface ControlHandlers {
  /** A worker asks for a world newer than `after`. */
  onNext(id: number, after: number, reason: string): void;
  onReject(remote: string, reason: string): void;
}

interface Connection {
  socket: net.Socket;
  clientNonce: string;
}

export class ElasticControlServer {
  private readonly connections = new Map<number, Connection>();
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    private readonly token: string,
    private readonly handlers: ControlHandlers,
  ) {
    server.on('connection', (s) => this.accept(s));
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  static async listen(host: string, range: readonly [number, number] | undefined, token: string, handlers: ControlHandlers): Promise<ElasticControlServer> {
    const tryPort = (port: number): Promise<net.Server> =>
      new Promise((resolve, reject) => {
        const s = net.createServer();
        s.once('error', reject);
        s.listen({ host, port, exclusive: true }, () => {
          s.off('error', reject);
          resolve(s);
        });
      });
    if (range === undefined) return new ElasticControlServer(await tryPort(0), token, handlers);
    const [lo, hi] = range;
    for (let i = 0, start = Math.floor(Math.random() * (hi - lo + 1)); i <= hi - lo; i++) {
      try {
        return new ElasticControlServer(await tryPort(lo + ((start + i) % (hi - lo + 1))), token, handlers);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EADDRINUSE' && code !== 'EACCES') throw e;
      }
    }
    throw new RingtrainError('ERR_RINGTRAIN_ARGUMENT', `no free port for the elastic control server in --port-range ${lo}-${hi} on ${host}`);
  }

  /** Sends `w` to worker `id`; false when it has no connection. */
  sendWorld(id: number, w: WorldAssignment): boolean {
    const c = this.connections.get(id);
    if (!c) return false;
    return this.write(c.socket, { t: 'world', ...w, mac: elasticMac(this.token, 'world', c.clientNonce, worldDigest(w)) });
  }

  send(id: number, m: LauncherMessage): boolean {
    const c = this.connections.get(id);
    return c ? this.write(c.socket, m) : false;
  }

  broadcast(m: LauncherMessage): void {
    for (const c of this.connections.values()) this.write(c.socket, m);
  }

  connected(id: number): boolean {
    return this.connections.has(id);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private write(socket: net.Socket, m: LauncherMessage): boolean {
    if (!socket.writable) return false;
    socket.write(`${JSON.stringify(m)}\n`);
    return true;
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    const remote = formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
    const nonce = randomBytes(16).toString('hex');
    let id: number | undefined;
    const reject = (reason: string): void => {
      this.handlers.onReject(remote, reason);
      socket.destroy();
    };
    const timer = setTimeout(() => id === undefined && reject(`did not say hello within ${HANDSHAKE_MS / 1000}s`), HANDSHAKE_MS);
    socket.on('close', () => {
      clearTimeout(timer);
      this.sockets.delete(socket);
      if (id !== undefined && this.connections.get(id)?.socket === socket) this.connections.delete(id);
    });
    this.write(socket, { t: 'hello', protocol: ELASTIC_PROTOCOL, nonce });
    let buffered = '';
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while (!socket.destroyed && (nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let m: Record<string, unknown>;
        try {
          const v: unknown = JSON.parse(line);
          if (typeof v !== 'object' || v === null) throw new Error('not an object');
          m = v as Record<string, unknown>;
        } catch {
          reject('malformed message (not JSON)');
          return;
        }
        if (id === undefined) {
          const claimed = m.id;
          if (m.t !== 'hello' || typeof claimed !== 'number' || !Number.isInteger(claimed) || typeof m.nonce !== 'string' || typeof m.mac !== 'string') {
            reject('malformed hello');
            return;
          }
          if (!macMatches(m.mac, elasticMac(this.token, 'hello', nonce, claimed))) {
            reject('authentication failed (wrong or missing RINGTRAIN_TOKEN)');
            return;
          }
          id = claimed;
          clearTimeout(timer);
          this.connections.get(id)?.socket.destroy();
          this.connections.set(id, { socket, clientNonce: m.nonce });
          continue;
        }
        if (m.t === 'next' && typeof m.after === 'number') this.handlers.onNext(id, m.after, typeof m.reason === 'string' ? m.reason.slice(0, 500) : '');
        else reject(`unexpected message from worker ${id}`);
      }
      if (buffered.length > MAX_LINE) reject(`line longer than ${MAX_LINE} bytes`);
    });
  }
}
