/**
 * A TCP socket carrying newline-delimited JSON objects, awaited one at a time with a deadline, that
 * can switch to raw bytes (the link test's bulk data) after any line. Every doctor connection
 * (control, probe, link) is one of these.
 */
import net from 'node:net';

const MAX_LINE = 64 * 1024;

export type Message = Record<string, unknown>;

export class LineSocket {
  private buffered: Buffer = Buffer.alloc(0);
  private readonly lines: Message[] = [];
  private waiter: { resolve: (m: Message) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | undefined;
  private failure: Error | undefined;
  private rawSink: ((chunk: Buffer) => void) | undefined;

  constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  send(message: Message): void {
    if (!this.socket.destroyed) this.socket.write(`${JSON.stringify(message)}\n`);
  }

  /** The next line, or a rejection when none comes within `timeoutMs` or the connection ends. */
  next(timeoutMs: number, what: string): Promise<Message> {
    const queued = this.lines.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`no ${what} within ${(timeoutMs / 1000).toFixed(1)}s`));
      }, timeoutMs);
      this.waiter = { resolve, reject, timer };
    });
  }

  /** From now on every byte goes to `sink` instead of being split into lines (bytes already buffered first). */
  raw(sink: (chunk: Buffer) => void): void {
    this.rawSink = sink;
    const rest = this.buffered;
    this.buffered = Buffer.alloc(0);
    if (rest.length > 0) sink(rest);
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.rawSink) {
      this.rawSink(chunk);
      return;
    }
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    let nl: number;
    while (!this.rawSink && (nl = this.buffered.indexOf(10)) >= 0) {
      const line = this.buffered.subarray(0, nl).toString('utf8');
      this.buffered = this.buffered.subarray(nl + 1);
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        this.fail(new Error('malformed message (not JSON)'));
        this.socket.destroy();
        return;
      }
      if (typeof message !== 'object' || message === null || Array.isArray(message)) {
        this.fail(new Error('malformed message (not a JSON object)'));
        this.socket.destroy();
        return;
      }
      this.deliver(message as Message);
    }
    if (this.rawSink && this.buffered.length > 0) this.raw(this.rawSink);
    else if (this.buffered.length > MAX_LINE) {
      this.fail(new Error(`line longer than ${MAX_LINE} bytes`));
      this.socket.destroy();
    }
  }

  private deliver(message: Message): void {
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.resolve(message);
    } else this.lines.push(message);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.reject(this.failure);
    }
  }
}

/** Connects with a deadline; the error says refused / timed out / unreachable in the kernel's words. */
export function connectWithin(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      const e = new Error(`no answer within ${(timeoutMs / 1000).toFixed(1)}s`) as NodeJS.ErrnoException;
      e.code = 'ETIMEDOUT';
      reject(e);
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    });
  });
}
