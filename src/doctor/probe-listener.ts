/**
 * The listener each host's agent opens inside --port-range, on the address its ranks would bind:
 * other hosts prove they hold the job token (probe), and measure the link to it (latency by ping
 * pong, then bulk bytes counted here and acknowledged).
 */
import net from 'node:net';
import { macEqual, newNonce } from '../job-auth.js';
import { DOCTOR_PROTOCOL } from './agent-messages.js';
import { LineSocket } from './line-socket.js';
import { probeMac, probeOkMac } from './proofs.js';

/** A connection must prove the token this soon, and a link test may last this long. */
const HANDSHAKE_MS = 5_000;
const LINK_MAX_MS = 60_000;
const MAX_CONNECTIONS = 256;

export class ProbeListener {
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly token: string) {}

  /**
   * Listens on up to `count` ports spread over the range (its low end, its high end, its middle),
   * so a firewall rule covering part of the range is found too; any free port without a range.
   */
  async listen(address: string, range: readonly [number, number] | undefined, count = 3): Promise<number[]> {
    if (range === undefined) return [await this.listenOn(address, 0)];
    const [lo, hi] = range;
    const ports: number[] = [];
    const tried = new Set<number>();
    const starts = [lo, hi, Math.floor((lo + hi) / 2)].slice(0, count);
    for (const [i, start] of starts.entries()) {
      // Low end upwards, high end downwards, middle upwards: the first free port from each.
      const step = i === 1 ? -1 : 1;
      for (let port = start; port >= lo && port <= hi; port += step) {
        if (tried.has(port)) break;
        tried.add(port);
        try {
          ports.push(await this.listenOn(address, port));
          break;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'EADDRINUSE' && code !== 'EACCES') throw e;
        }
      }
    }
    if (ports.length === 0) throw new Error(`no free port in --port-range ${lo}-${hi} on ${address}`);
    return ports.sort((a, b) => a - b);
  }

  close(): void {
    for (const s of this.servers) s.close();
    for (const s of this.sockets) s.destroy();
  }

  private listenOn(address: string, port: number): Promise<number> {
    // Half-open: the link test's sender ends its side, then reads the count sent back.
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: address, port, exclusive: true }, () => {
        server.off('error', reject);
        this.servers.push(server);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  }

  private accept(socket: net.Socket): void {
    if (this.sockets.size >= MAX_CONNECTIONS) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    void this.serve(new LineSocket(socket)).catch(() => socket.destroy());
  }

  private async serve(conn: LineSocket): Promise<void> {
    const nonce = newNonce();
    conn.send({ t: 'hello', protocol: DOCTOR_PROTOCOL, nonce });
    const m = await conn.next(HANDSHAKE_MS, 'probe');
    if ((m.t !== 'probe' && m.t !== 'link') || typeof m.from !== 'string' || typeof m.nonce !== 'string' || typeof m.mac !== 'string') {
      conn.send({ t: 'error', message: 'not a doctor probe' });
      conn.socket.end();
      return;
    }
    if (!macEqual(m.mac, probeMac(this.token, nonce, m.from))) {
      conn.send({ t: 'error', message: 'wrong job token' });
      conn.socket.end();
      return;
    }
    conn.send({ t: 'ok', mac: probeOkMac(this.token, m.nonce) });
    if (m.t === 'probe') {
      conn.socket.end();
      return;
    }
    await this.serveLink(conn);
  }

  /** Pings are answered until `bulk`; then bytes are counted to the sender's end of stream. */
  private async serveLink(conn: LineSocket): Promise<void> {
    const deadline = Date.now() + LINK_MAX_MS;
    for (;;) {
      const m = await conn.next(Math.max(1, deadline - Date.now()), 'link message');
      if (m.t === 'ping') conn.send({ t: 'pong' });
      else if (m.t === 'bulk') break;
      else throw new Error('unexpected link message');
    }
    let bytes = 0;
    conn.raw((chunk) => (bytes += chunk.length));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
      conn.socket.once('end', () => {
        clearTimeout(timer);
        resolve();
      });
      conn.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (!conn.socket.destroyed) conn.socket.end(`${JSON.stringify({ t: 'received', bytes })}\n`);
  }
}
