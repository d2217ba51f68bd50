// A logs pane beside a terminal: the same pod/container's `pods/log` streamed through the
// gateway with fetch() (the session cookie), following, the previous instance, timestamps,
// search that highlights and jumps, and a download of the text. Memory is bounded (LogBuffer).

import { h } from './dom';
import { LogBuffer, droppedText, errorText, logFileName, logPath, matchRanges, stepMatch } from './logtext';
import type { Target } from './route';

/// What the UI tests read of a pane (through the DOM's data, or `LogsPane.state`).
export type LogsState = 'loading' | 'streaming' | 'ended' | 'error' | 'closed';

export class LogsPane {
  readonly element: HTMLElement;
  readonly buffer = new LogBuffer();
  state: LogsState = 'loading';
  error = '';
  private readonly follow: HTMLInputElement;
  private readonly previous: HTMLInputElement;
  private readonly timestamps: HTMLInputElement;
  private readonly searchInput: HTMLInputElement;
  private readonly count: HTMLElement;
  private readonly status: HTMLElement;
  private readonly body: HTMLElement;
  private readonly marker: HTMLElement;
  private abort: AbortController | null = null;
  private rendered = 0; // buffer.total already on screen
  private renderedDropped = 0;
  private frame = 0;
  private current = -1;
  private closed = false;

  /// `onLayout` runs when the pane switches between beside and instead of the terminal, so
  /// the terminal can refit to the room it has again.
  constructor(readonly target: Target, readonly onClose: () => void = () => {}, readonly onLayout: () => void = () => {}) {
    const box = (label: string, checked: boolean, cls: string) => {
      const i = h('input', { type: 'checkbox', class: cls, onchange: () => this.restart() });
      i.checked = checked;
      return [i, h('label', { class: 'logs-toggle' }, i, label)] as const;
    };
    const [follow, followL] = box('Follow', true, 'logs-follow');
    const [previous, previousL] = box('Previous', false, 'logs-previous');
    const [timestamps, timestampsL] = box('Timestamps', false, 'logs-timestamps');
    this.follow = follow;
    this.previous = previous;
    this.timestamps = timestamps;
    this.searchInput = h('input', {
      type: 'search', class: 'logs-search', placeholder: 'Search log', 'aria-label': 'Search log',
      oninput: () => this.highlight(true),
      onkeydown: (ev: Event) => {
        const k = ev as KeyboardEvent;
        if (k.key === 'Enter') { k.preventDefault(); this.jump(!k.shiftKey); }
        if (k.key === 'Escape') { this.searchInput.value = ''; this.highlight(false); }
      },
    });
    this.count = h('span', { class: 'logs-count', 'aria-live': 'polite' });
    this.status = h('div', { class: 'logs-status', role: 'status' });
    this.marker = h('div', { class: 'logs-dropped', hidden: true });
    this.body = h('div', { class: 'logs-body', tabindex: '0', 'aria-label': 'log lines' }, this.marker);
    this.element = h('section', { class: 'logs-pane', 'aria-label': `logs ${target.pod}${target.container ? '/' + target.container : ''}` },
      h('div', { class: 'logs-bar' },
        h('strong', {}, 'Logs'), followL, previousL, timestampsL, this.searchInput,
        h('button', { type: 'button', class: 'logs-prev', title: 'Previous match (Shift+Enter)', onclick: () => this.jump(false) }, '↑'),
        h('button', { type: 'button', class: 'logs-next', title: 'Next match (Enter)', onclick: () => this.jump(true) }, '↓'),
        this.count,
        h('button', { type: 'button', class: 'logs-wide', 'aria-pressed': 'false', title: 'The log instead of the terminal (the shell keeps running)', onclick: () => this.toggleWide() }, 'Full width'),
        h('button', { type: 'button', class: 'logs-download', title: 'Download the log as a file', onclick: () => this.download() }, 'Download'),
        h('button', { type: 'button', class: 'logs-close', title: 'Close the logs', onclick: () => this.close() }, '×')),
      this.status, this.body);
    this.setState('loading');
  }

  /// Starts streaming (call once the element is on the page).
  start(): void {
    this.restart();
  }

  private setState(s: LogsState, message = ''): void {
    this.state = s;
    this.error = s === 'error' ? message : '';
    this.element.dataset.state = s;
    this.status.textContent = message;
    this.status.classList.toggle('error', s === 'error');
  }

  private restart(): void {
    this.abort?.abort();
    if (this.closed) return;
    this.buffer.clear();
    this.rendered = 0;
    this.renderedDropped = 0;
    this.current = -1;
    for (const el of Array.from(this.body.querySelectorAll('.logs-line'))) el.remove();
    this.marker.hidden = true;
    const ctl = new AbortController();
    this.abort = ctl;
    void this.stream(ctl);
  }

  private async stream(ctl: AbortController): Promise<void> {
    const t = this.target;
    const path = logPath(t.cluster, t.namespace, t.pod, {
      container: t.container, follow: this.follow.checked, previous: this.previous.checked, timestamps: this.timestamps.checked,
    });
    this.setState('loading', 'Loading…');
    try {
      const r = await fetch(path, { credentials: 'same-origin', signal: ctl.signal, headers: { Accept: '*/*' } });
      if (!r.ok || !r.body) {
        this.setState('error', errorText(r.status, await r.text()));
        return;
      }
      this.setState('streaming', this.follow.checked && !this.previous.checked ? 'Following…' : '');
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (ctl.signal.aborted) return;
        this.buffer.push(dec.decode(value, { stream: true }));
        this.schedule();
      }
      this.buffer.push(dec.decode());
      this.buffer.end();
      this.schedule();
      if (this.abort === ctl) this.setState('ended', this.follow.checked && !this.previous.checked ? 'The log ended.' : '');
    } catch (e) {
      if (ctl.signal.aborted) return;
      this.setState('error', `The log stream failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  private lineEl(text: string): HTMLElement {
    const el = h('div', { class: 'logs-line' });
    this.fill(el, text, this.searchInput.value);
    return el;
  }

  private fill(el: HTMLElement, text: string, needle: string): void {
    el.textContent = '';
    let at = 0;
    for (const [s, e] of matchRanges(text, needle)) {
      if (s > at) el.append(text.slice(at, s));
      el.append(h('mark', {}, text.slice(s, e)));
      at = e;
    }
    if (at < text.length || !text) el.append(text.slice(at) || '\u200b');
  }

  private render(): void {
    const b = this.body;
    const atBottom = b.scrollHeight - b.scrollTop - b.clientHeight < 40;
    // Drop what the buffer dropped, then append what is new.
    let drop = this.buffer.dropped - this.renderedDropped;
    while (drop-- > 0 && this.marker.nextSibling) (this.marker.nextSibling as HTMLElement).remove();
    this.renderedDropped = this.buffer.dropped;
    const kept = this.buffer.kept();
    const fresh = Math.min(this.buffer.total - this.rendered, kept.length);
    const frag = document.createDocumentFragment();
    for (const line of kept.slice(kept.length - fresh)) frag.append(this.lineEl(line));
    b.append(frag);
    this.rendered = this.buffer.total;
    this.marker.hidden = !this.buffer.dropped;
    this.marker.textContent = this.buffer.dropped ? droppedText(this.buffer.dropped) : '';
    if (this.searchInput.value) this.updateCount();
    if (atBottom && this.follow.checked) b.scrollTop = b.scrollHeight;
  }

  private marks(): HTMLElement[] {
    return Array.from(this.body.querySelectorAll('mark'));
  }

  private updateCount(): void {
    const n = this.marks().length;
    this.count.textContent = this.searchInput.value ? `${this.current >= 0 ? this.current + 1 : 0}/${n}` : '';
  }

  private highlight(jump: boolean): void {
    const needle = this.searchInput.value;
    const kept = this.buffer.kept();
    const rows = Array.from(this.body.querySelectorAll<HTMLElement>('.logs-line'));
    rows.forEach((el, i) => this.fill(el, kept[kept.length - rows.length + i] ?? '', needle));
    this.current = -1;
    if (jump && needle) this.jump(true);
    else this.updateCount();
  }

  /// Moves to the next (or previous) match and scrolls it into view.
  jump(forward: boolean): void {
    const marks = this.marks();
    marks[this.current]?.classList.remove('current');
    this.current = stepMatch(this.current, marks.length, forward);
    const m = marks[this.current];
    if (m) {
      m.classList.add('current');
      m.scrollIntoView({ block: 'center' });
    }
    this.updateCount();
  }

  /// The log as text (the kept lines), as a download holds it.
  text(): string {
    return this.buffer.text();
  }

  download(): void {
    const blob = new Blob([this.text()], { type: 'text/plain;charset=utf-8' });
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: logFileName(this.target.pod, this.target.container, this.previous.checked), hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  /// Shows the log instead of the terminal, or beside it again.
  toggleWide(): void {
    const host = this.element.parentElement;
    if (!host) return;
    const wide = host.classList.toggle('logs-only');
    this.element.querySelector('.logs-wide')?.setAttribute('aria-pressed', String(wide));
    this.onLayout();
  }

  /// Ends the stream and takes the pane off the page.
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.abort?.abort();
    this.abort = null;
    cancelAnimationFrame(this.frame);
    this.setState('closed');
    this.element.parentElement?.classList.remove('logs-only');
    this.element.remove();
    this.onClose();
  }
}
