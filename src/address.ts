/** host:port parsing and formatting, IPv6 literals in brackets. */
export interface HostPort {
  host: string;
  port: number;
}

export function parseHostPort(text: string, what: string): HostPort {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:\s]+):(\d+)$/.exec(text);
  if (!m) throw new Error(`${what}: expected host:port or [ipv6]:port, got '${text}'`);
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`${what}: port must be 1..65535, got '${m[2]}'`);
  }
  return { host: m[1]!, port };
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Parses "A-B" into an inclusive port range. */
export function parsePortRange(text: string, what: string): [number, number] {
  const m = /^(\d+)-(\d+)$/.exec(text.trim());
  const lo = m ? Number(m[1]) : NaN;
  const hi = m ? Number(m[2]) : NaN;
  if (!m || lo < 1 || hi > 65535 || lo > hi) {
    throw new Error(`${what}: expected a port range A-B with 1 <= A <= B <= 65535, got '${text}'`);
  }
  return [lo, hi];
}
