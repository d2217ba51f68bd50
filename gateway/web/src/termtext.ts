// A terminal's whole buffer as text, one line per row, trailing blanks cut (for the UI tests,
// which compare screens, and for people who grep).

import type { Terminal } from '@xterm/xterm';

export function bufferText(term: Terminal): string {
  const buf = term.buffer.active;
  const lines: string[] = [];
  for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? '');
  return lines.join('\n');
}
