// A read-only xterm.js terminal that shows a recording (the observe and replay views): output
// written as strings, resizes applied in their place in the stream. Nothing typed into it goes
// anywhere.

import { Terminal } from '@xterm/xterm';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { h } from './dom';
import { bufferText } from './termtext';
import type { TermOp } from './timeline';
import { TERMINAL_THEMES, type ThemeName } from './theme';

export class CastTerminal {
  readonly element: HTMLElement;
  readonly term: Terminal;
  /// Writes handed to xterm and not yet parsed (tests wait for none).
  pending = 0;

  /// `tty`: whether the session had a terminal. Without one, nothing turned its newlines into
  /// CR LF, so the view does (as a terminal's `onlcr` would have).
  constructor(theme: ThemeName, cols: number, rows: number, tty = true) {
    // As the live terminal is (terminal.ts), so the same stream draws the same screen.
    this.term = new Terminal({
      convertEol: !tty,
      allowProposedApi: true,
      cols,
      rows,
      scrollback: 10000,
      disableStdin: true,
      cursorBlink: false,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", "Cascadia Mono", Menlo, Consolas, monospace',
      fontSize: 14,
      theme: TERMINAL_THEMES[theme],
    });
    this.element = h('div', { class: 'cast-host' });
  }

  mount(parent: HTMLElement): void {
    parent.appendChild(this.element);
    this.term.open(this.element);
    this.term.loadAddon(new Unicode11Addon());
    this.term.unicode.activeVersion = '11';
  }

  /// Applies `ops` in order. xterm parses writes later, in pieces, but resizes at once, so a
  /// resize waits (as a write callback) until the output before it is on the screen.
  apply(ops: TermOp[], done?: () => void): void {
    for (const op of ops) {
      this.pending++;
      if ('write' in op) {
        this.term.write(op.write, () => this.pending--);
      } else {
        const { cols, rows } = op.resize;
        this.term.write('', () => {
          this.pending--;
          if (cols !== this.term.cols || rows !== this.term.rows) this.term.resize(cols, rows);
        });
      }
    }
    if (done) {
      this.pending++;
      this.term.write('', () => {
        this.pending--;
        done();
      });
    }
  }

  /// Back to an empty terminal of `cols`x`rows` (a seek backwards). Writes still queued are
  /// parsed first, then wiped, so nothing old lands on the new screen.
  reset(cols: number, rows: number): void {
    this.pending++;
    this.term.write('', () => {
      this.pending--;
      this.term.reset();
      if (cols !== this.term.cols || rows !== this.term.rows) this.term.resize(cols, rows);
    });
  }

  setTheme(theme: ThemeName): void {
    this.term.options.theme = TERMINAL_THEMES[theme];
  }

  /// The whole buffer as text, one line per row (as the live terminal's).
  text(): string {
    return bufferText(this.term);
  }

  dispose(): void {
    this.term.dispose();
    this.element.remove();
  }
}
