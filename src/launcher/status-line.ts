/**
 * The launcher's one status line on its terminal: ranks' progress lines (src/progress.ts) are
 * drawn here in place, and taken away before any other output is written, so they never mix with
 * the ranks' lines.
 */
export class StatusLine {
  private text = '';

  constructor(private readonly writeTerminal: (text: string) => void) {}

  /** Shows `text` (empty: removes the line). */
  show(text: string): void {
    this.text = text;
    this.writeTerminal(`\r\x1b[K${text}`);
  }

  /** Wraps a writer so that the status line is removed before it writes, and drawn again after. */
  around(write: (text: string) => void): (text: string) => void {
    return (t) => {
      if (!this.text) return write(t);
      this.writeTerminal('\r\x1b[K');
      write(t);
      this.writeTerminal(this.text);
    };
  }
}
