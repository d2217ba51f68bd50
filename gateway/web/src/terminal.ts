// One terminal tab: an xterm.js terminal wired to an exec WebSocket (v5.channel.k8s.io)
// through the gateway, authenticated by the session cookie the browser sends itself.

import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon } from '@xterm/addon-search';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { clusterPath, getJSON, probe, type Pod } from './api';
import { h } from './dom';
import { checkContainer, ending, outcomeOf, refusal, type ContainerCheck, type Notice } from './messages';
import {
  CLOSE, STATUS, STDERR, STDOUT, SUBPROTOCOL,
  endsMidCharacter, parseStatus, resizeFrame, stdinFrame, type K8sStatus,
} from './protocol';
import type { Target } from './route';
import { bufferText } from './termtext';
import { TERMINAL_THEMES, type ThemeName } from './theme';

/// One exec that starts bash where the image has it, sh otherwise.
export const AUTO_SHELL = ['sh', '-c', 'command -v bash >/dev/null && exec bash || exec sh'];

export type State = 'connecting' | 'open' | 'ended';

/// Counters the UI tests read through `window.podgate`.
export interface Stats {
  sessions: number;
  outputFrames: number;
  /// Output frames that ended inside a multi-byte UTF-8 character.
  splitFrames: number;
  resizes: { cols: number; rows: number }[];
  lastNotice: string;
}

/// Stdin bytes per WebSocket message, far below the gateway's message limit.
const MAX_STDIN_CHUNK = 32 * 1024;

/// Fits the terminal this long after the last size change (a window drag sends many).
const FIT_DEBOUNCE_MS = 60;

export class TerminalTab {
  readonly element: HTMLElement;
  readonly term: Terminal;
  readonly stats: Stats = { sessions: 0, outputFrames: 0, splitFrames: 0, resizes: [], lastNotice: '' };
  state: State = 'connecting';
  onStateChange: () => void = () => {};
  /// Called when podgate answers this tab 401: the browser login is gone.
  onUnauthorized: () => void = () => {};

  private readonly host: HTMLElement;
  private readonly fitAddon = new FitAddon();
  private readonly search = new SearchAddon();
  private readonly searchBar: HTMLElement;
  private readonly searchInput: HTMLInputElement;
  private readonly observer: ResizeObserver;
  private ws: WebSocket | null = null;
  private pending: Uint8Array[] = [];
  private fitTimer: number | undefined;
  private lastSize = '';
  private disposed = false;

  constructor(readonly target: Target, theme: ThemeName) {
    this.term = new Terminal({
      allowProposedApi: true, // unicode11's width tables
      cursorBlink: true,
      scrollback: 10000,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", "Cascadia Mono", Menlo, Consolas, monospace',
      fontSize: 14,
      theme: TERMINAL_THEMES[theme],
    });
    this.searchInput = h('input', {
      type: 'search', placeholder: 'Find in terminal', 'aria-label': 'Find in terminal',
      onkeydown: (ev: Event) => this.onSearchKey(ev as KeyboardEvent),
    });
    this.searchBar = h('div', { class: 'search', hidden: true },
      this.searchInput,
      h('button', { type: 'button', title: 'Previous match (Shift+Enter)', onclick: () => this.find(false) }, '↑'),
      h('button', { type: 'button', title: 'Next match (Enter)', onclick: () => this.find(true) }, '↓'),
      h('button', { type: 'button', title: 'Close (Escape)', onclick: () => this.closeSearch() }, '×'),
    );
    this.host = h('div', { class: 'term-host' });
    this.element = h('section', { class: 'pane', 'aria-label': `terminal ${this.title()}` }, this.searchBar, this.host);
    this.observer = new ResizeObserver(() => this.scheduleFit());
  }

  title(): string {
    const t = this.target;
    return `${t.pod}${t.container ? '/' + t.container : ''} · ${t.namespace} · ${t.cluster}`;
  }

  /// Puts the terminal on the page and starts the first session. `parent` must be visible,
  /// so the first fit measures real cells and the first resize carries the real size.
  mount(parent: HTMLElement): void {
    parent.appendChild(this.element);
    this.term.open(this.host);
    this.term.loadAddon(this.fitAddon);
    this.term.loadAddon(this.search);
    this.term.loadAddon(new WebLinksAddon());
    this.term.loadAddon(new Unicode11Addon());
    this.term.unicode.activeVersion = '11';
    this.term.onData((d) => this.input(stdinFrame(d), d));
    this.term.onBinary((d) => this.input(stdinFrame(Uint8Array.from(d, (c) => c.charCodeAt(0) & 0xff)), d));
    this.term.onResize(() => this.sendSize());
    this.term.onSelectionChange(() => {
      const text = this.term.getSelection();
      if (text) navigator.clipboard?.writeText(text).catch(() => {});
    });
    this.term.attachCustomKeyEventHandler((ev) => this.onKey(ev));
    this.observer.observe(this.host);
    this.fit();
    this.connect();
  }

  show(): void {
    this.element.hidden = false;
    this.fit();
    this.term.focus();
  }

  hide(): void {
    this.element.hidden = true;
  }

  setTheme(theme: ThemeName): void {
    this.term.options.theme = TERMINAL_THEMES[theme];
  }

  /// The whole buffer as text, one line per row (for tests and for people who grep).
  text(): string {
    return bufferText(this.term);
  }

  dispose(): void {
    this.disposed = true;
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000, 'tab closed');
    window.clearTimeout(this.fitTimer);
    this.observer.disconnect();
    this.term.dispose();
    this.element.remove();
  }

  execPath(): string {
    const t = this.target;
    const q = new URLSearchParams();
    if (t.container) q.set('container', t.container);
    for (const c of t.command?.length ? t.command : AUTO_SHELL) q.append('command', c);
    q.set('stdin', 'true');
    q.set('stdout', 'true');
    q.set('tty', 'true');
    const e = encodeURIComponent;
    return clusterPath(t.cluster, `/api/v1/namespaces/${e(t.namespace)}/pods/${e(t.pod)}/exec?${q}`);
  }

  private setState(s: State): void {
    this.state = s;
    this.onStateChange();
  }

  private connect(): void {
    this.setState('connecting');
    this.pending = [];
    this.lastSize = '';
    const url = new URL(this.execPath(), location.href);
    url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, [SUBPROTOCOL]);
    } catch (e) {
      this.end({ title: 'Could not open the terminal', detail: String(e), retry: true });
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    let opened = false;
    let status: K8sStatus | null = null;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      opened = true;
      this.stats.sessions++;
      // The size goes first: a tty in the pod waits for it before the shell starts, so the
      // shell's first prompt is drawn for this window, not for 80x24.
      this.fit();
      this.sendSize(true);
      for (const f of this.pending) ws.send(f);
      this.pending = [];
      this.setState('open');
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (this.ws !== ws || !(ev.data instanceof ArrayBuffer)) return;
      const b = new Uint8Array(ev.data);
      if (b.length <= 1) return; // the empty frame each stream opens with
      const payload = b.subarray(1);
      switch (b[0]) {
        case STDOUT:
        case STDERR:
          this.stats.outputFrames++;
          if (endsMidCharacter(payload)) this.stats.splitFrames++;
          // Bytes, not text: xterm keeps a character split across frames until it is whole.
          this.term.write(payload);
          break;
        case STATUS:
          status = parseStatus(payload) ?? { message: new TextDecoder().decode(payload) };
          break;
        case CLOSE:
          break;
      }
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (!opened) {
        // A refused handshake reaches a page only as close code 1006, without the HTTP status
        // or the Status body: ask again.
        void this.explainRefusal();
        return;
      }
      this.end(ending(status, { code: ev.code, reason: ev.reason }));
    };
  }

  /// A browser is told nothing about a refused upgrade, so the same URL is asked again as a
  /// plain GET: the gateway and the cluster answer it with the Status they refused with.
  private async explainRefusal(): Promise<void> {
    const { code, status } = await probe(this.execPath());
    if (code === 0) {
      this.end({ title: 'podgate cannot be reached', detail: status?.message ?? '', retry: true });
      return;
    }
    if (code === 401) this.onUnauthorized();
    // A cluster's 400 is told apart by what the pod has, not by its words (see `refusal`).
    const container: ContainerCheck = code === 400 && outcomeOf(status) === null
      ? checkContainer(await this.readPod(), this.target.container)
      : 'unknown';
    this.end(refusal(code, status, container));
  }

  /// The pod as the cluster has it now, as the person may see it; null when it cannot be read.
  private async readPod(): Promise<Pod | null> {
    const t = this.target;
    const e = encodeURIComponent;
    try {
      return await getJSON<Pod>(clusterPath(t.cluster, `/api/v1/namespaces/${e(t.namespace)}/pods/${e(t.pod)}`));
    } catch {
      return null;
    }
  }

  private end(n: Notice): void {
    if (this.disposed) return; // the tab was closed while its refusal was being asked about
    this.stats.lastNotice = [n.title, n.detail].filter(Boolean).join(': ');
    const color = n.tone === 'ok' ? '32' : n.tone === 'exit' ? '33' : '31';
    let out = `\r\n\x1b[0m\x1b[1;${color}m${n.title}\x1b[0m\r\n`;
    if (n.detail) out += `${n.detail.replace(/\r?\n/g, '\r\n')}\r\n`;
    out += `\x1b[2m${n.retry ? 'Press Enter to reconnect (a new session).' : 'Press Enter to try again.'}\x1b[0m\r\n`;
    this.term.write(out);
    this.setState('ended');
  }

  private input(frame: Uint8Array, data: string): void {
    if (this.state === 'ended') {
      if (data.includes('\r')) {
        this.term.write('\r\n');
        this.connect();
      }
      return;
    }
    // A big paste goes in pieces: the gateway refuses single messages past its limit.
    const frames: Uint8Array[] = [];
    for (let at = 1; at < frame.length; at += MAX_STDIN_CHUNK) {
      frames.push(frame.length <= MAX_STDIN_CHUNK + 1 ? frame : stdinFrame(frame.subarray(at, at + MAX_STDIN_CHUNK)));
    }
    if (this.state === 'connecting') {
      this.pending.push(...frames);
      return;
    }
    for (const f of frames) this.ws?.send(f);
  }

  private sendSize(force = false): void {
    const { cols, rows } = this.term;
    const key = `${cols}x${rows}`;
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || (!force && key === this.lastSize)) return;
    this.lastSize = key;
    this.stats.resizes.push({ cols, rows });
    this.ws.send(resizeFrame(cols, rows));
  }

  private scheduleFit(): void {
    window.clearTimeout(this.fitTimer);
    this.fitTimer = window.setTimeout(() => this.fit(), FIT_DEBOUNCE_MS);
  }

  private fit(): void {
    if (this.element.hidden || !this.host.isConnected) return;
    const d = this.fitAddon.proposeDimensions();
    if (!d || !Number.isFinite(d.cols) || !Number.isFinite(d.rows) || d.cols < 2 || d.rows < 1) return;
    this.fitAddon.fit();
  }

  private onKey(ev: KeyboardEvent): boolean {
    if (ev.type !== 'keydown' || !ev.ctrlKey || !ev.shiftKey || ev.altKey || ev.metaKey) return true;
    switch (ev.code) {
      case 'KeyC': {
        const text = this.term.getSelection();
        if (text) navigator.clipboard?.writeText(text).catch(() => {});
        ev.preventDefault();
        return false;
      }
      case 'KeyV':
        // Not handled as a key: the browser's own paste follows and xterm takes the paste
        // event (no clipboard permission prompt).
        return false;
      case 'KeyF':
        ev.preventDefault();
        this.openSearch();
        return false;
      default:
        return true;
    }
  }

  private openSearch(): void {
    this.searchBar.hidden = false;
    const sel = this.term.getSelection();
    if (sel && !sel.includes('\n')) this.searchInput.value = sel;
    this.searchInput.focus();
    this.searchInput.select();
  }

  private closeSearch(): void {
    this.searchBar.hidden = true;
    this.search.clearDecorations();
    this.term.focus();
  }

  private find(next: boolean): void {
    const q = this.searchInput.value;
    if (!q) return;
    if (next) this.search.findNext(q);
    else this.search.findPrevious(q);
  }

  private onSearchKey(ev: KeyboardEvent): void {
    if (ev.key === 'Enter') {
      ev.preventDefault();
      this.find(!ev.shiftKey);
    } else if (ev.key === 'Escape') {
      ev.preventDefault();
      this.closeSearch();
    }
  }
}
