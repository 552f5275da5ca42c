/**
 * Turns one stream of a rank's output into whole lines, each prefixed `[rank] `, written with one
 * write per chunk so that lines of different ranks never mix mid-line. A line longer than
 * `maxLineLength` is cut there (memory stays bounded); the piece after the cut gets the prefix again.
 */
import { StringDecoder } from 'node:string_decoder';

export interface OutputPrefixerOptions {
  /** Prepended to every line, e.g. `[3] `; empty for untagged output. */
  prefix: string;
  write: (text: string) => void;
  /** Sees every line (without its newline) before it is written; returning false drops it. */
  filter?: (line: string) => boolean;
  maxLineLength?: number;
}

export class OutputPrefixer {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';
  private readonly maxLineLength: number;

  constructor(private readonly options: OutputPrefixerOptions) {
    this.maxLineLength = options.maxLineLength ?? 1 << 20;
  }

  push(chunk: Buffer | string): void {
    this.take(typeof chunk === 'string' ? chunk : this.decoder.write(chunk), false);
  }

  /** Writes what is left of an unterminated last line, with a newline. */
  end(): void {
    this.take(this.decoder.end(), true);
  }

  private take(text: string, final: boolean): void {
    let data = this.partial + text;
    this.partial = '';
    let out = '';
    let nl: number;
    while ((nl = data.indexOf('\n')) >= 0) {
      out += this.line(data.slice(0, nl));
      data = data.slice(nl + 1);
    }
    while (data.length > this.maxLineLength) {
      out += this.line(data.slice(0, this.maxLineLength));
      data = data.slice(this.maxLineLength);
    }
    if (final && data.length > 0) out += this.line(data);
    else this.partial = data;
    if (out.length > 0) this.options.write(out);
  }

  private line(line: string): string {
    const text = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (this.options.filter && !this.options.filter(text)) return '';
    return `${this.options.prefix}${text}\n`;
  }
}
