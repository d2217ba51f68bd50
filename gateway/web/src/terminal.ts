// One terminal tab: an xterm.js terminal wired to an exec WebSocket (v5.channel.k8s.io)
// through the gateway, authenticated by the session cookie the browser sends itself.

import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon } from '@xterm/addon-search';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { clusterPath, getJSON, probe, type ClusterInfo, type Pod } from './api';
import { h } from './dom';
import { LogsPane } from './logs';
import { FilesPanel } from './files';
import { checkContainer, ending, outcomeOf, refusal, type ContainerCheck, type Notice } from './messages';
import {
  CLOSE, STATUS, STDERR, STDOUT,
  endsMidCharacter, parseStatus, resizeFrame, stdinFrame, type K8sStatus,
} from './protocol';
import {
  Backoff, CONTROL, InputQueue, LinkWatch, NEW_SESSION_PROTOCOLS, Offsets, ackFrame, ackInterval, decodeControl, gapText,
  isDrop, reconnectingText, refusedDetail, resumePath, resumeProtocols, windowText, type Clock, type ControlIn, type Hello,
} from './resume';
import type { Target } from './route';
import { bufferText } from './termtext';
import { TERMINAL_THEMES, type ThemeName } from './theme';
import { DEFAULT_FONT, environmentMark, fullPath, limitsText, parseLimits, tabTitle, type EnvMark, type Limits } from './where';

/// One exec that starts bash where the image has it, sh otherwise.
export const AUTO_SHELL = ['sh', '-c', 'command -v bash >/dev/null && exec bash || exec sh'];

export type State = 'connecting' | 'open' | 'reconnecting' | 'ended';

/// Counters the UI tests read through `window.podgate`.
export interface Stats {
  sessions: number;
  outputFrames: number;
  /// Output frames that ended inside a multi-byte UTF-8 character.
  splitFrames: number;
  resizes: { cols: number; rows: number }[];
  lastNotice: string;
  /// Resume (`podgate.resume.v1`): whether podgate said hello (the session can be resumed).
  resumable: boolean;
  /// Drops noticed (a connection gone without an ending, or a dead link).
  drops: number;
  /// Of those, dead links (nothing heard for 2 × heartbeat + 2 s).
  deadLinks: number;
  /// Resume connections tried, and resumes podgate answered `resumed`.
  resumeAttempts: number;
  resumes: number;
  /// The `gap` of the last resume, and all gaps together (bytes skipped).
  lastGap: number;
  gapBytes: number;
  /// Whether the tab is reconnecting now, and its banner.
  reconnecting: boolean;
  banner: string;
  /// Output bytes received (where a resume continues), rendered, and acknowledged.
  offset: number;
  rendered: number;
  acked: number;
  heartbeats: number;
  /// Input typed while disconnected: bytes queued for after the resume, and bytes refused.
  queuedInput: number;
  refusedInput: number;
  /// The last `notice` podgate sent on the control channel.
  lastControlNotice: string;
  /// Why the last resume was given up: a `refused` reason, `window`, `closed` or `client`.
  resumeFailure: string;
  /// What the terminal's header says about the session's limits (podgate's `hello`).
  limits: string;
  limitsNear: boolean;
}

/// Stdin bytes per WebSocket message, far below the gateway's message limit.
const MAX_STDIN_CHUNK = 32 * 1024;

/// Fits the terminal this long after the last size change (a window drag sends many).
const FIT_DEBOUNCE_MS = 60;

/// The page's own clock and timers, for the resume parts.
const WINDOW_CLOCK: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => window.setTimeout(fn, ms),
  clearTimeout: (handle) => window.clearTimeout(handle as number),
};

function freshStats(): Stats {
  return {
    sessions: 0, outputFrames: 0, splitFrames: 0, resizes: [], lastNotice: '',
    resumable: false, drops: 0, deadLinks: 0, resumeAttempts: 0, resumes: 0, lastGap: 0, gapBytes: 0,
    reconnecting: false, banner: '', offset: 0, rendered: 0, acked: 0, heartbeats: 0,
    queuedInput: 0, refusedInput: 0, lastControlNotice: '', resumeFailure: '', limits: '', limitsNear: false,
  };
}

/// How one WebSocket of a tab came to be: a new session, or a resume of the tab's session.
type Kind = 'new' | 'resume';

export class TerminalTab {
  readonly element: HTMLElement;
  readonly term: Terminal;
  readonly stats: Stats = freshStats();
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
  /// Whether `ws` carries the session now (open, and for a resume, `resumed`): only then do
  /// input, sizes and acks go out.
  private attached = false;

  // Resume (docs/protocol.md, `podgate.resume.v1`).
  private readonly banner: HTMLElement;
  private readonly bannerText: HTMLElement;
  private readonly bannerNote: HTMLElement;
  /// What podgate's `hello` said; null for a session that cannot be resumed.
  private resumable: Hello | null = null;
  private offsets = new Offsets();
  private readonly watch = new LinkWatch(WINDOW_CLOCK, () => this.deadLink());
  private readonly backoff = new Backoff(Math.random);
  private queue = new InputQueue();
  /// The end of the resume window, counted from the drop.
  private deadline = 0;
  /// The offset the resume in flight asked for.
  private asked = 0;
  private retryTimer: number | undefined;
  private countdown: number | undefined;
  /// Connections given up on while they may still be open (a silent link): closed once the
  /// session is back or over, never before (a close frame reaching podgate would end it).
  private stale: WebSocket[] = [];
  /// Whether the person was told, in this outage, that input past the queue is refused.
  private toldRefused = false;

  // Knowing where you are: the header above the terminal.
  /// The cluster as `/podgate/clusters` describes it, once known.
  cluster: ClusterInfo | null = null;
  mark: EnvMark = environmentMark(null);
  private readonly headEnv: HTMLElement;
  private readonly headPath: HTMLElement;
  private readonly headLimits: HTMLElement;
  /// The session's limits (podgate's `hello`), when it starts, and its last input or output.
  private limits: Limits | null = null;
  private sessionStart = 0;
  private activity = 0;
  private limitsTimer: number | undefined;

  constructor(readonly target: Target, theme: ThemeName, fontSize = DEFAULT_FONT) {
    this.term = new Terminal({
      allowProposedApi: true, // unicode11's width tables
      cursorBlink: true,
      scrollback: 10000,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", "Cascadia Mono", Menlo, Consolas, monospace',
      fontSize,
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
    this.bannerText = h('span', { class: 'reconnect-text', 'aria-hidden': 'true' });
    this.bannerNote = h('span', { class: 'reconnect-note' });
    this.banner = h('div', { class: 'reconnect-banner', role: 'status', hidden: true },
      h('span', { class: 'sr-only' }, 'Connection lost: reconnecting to the same session.'),
      this.bannerText, this.bannerNote,
      h('button', { type: 'button', class: 'reconnect-now', title: 'Try to reconnect now', onclick: () => this.retryNow() }, 'Retry now'),
    );
    this.headEnv = h('span', { class: 'env-badge', hidden: true });
    this.headPath = h('span', { class: 'term-path' }, fullPath(target));
    this.headLimits = h('span', { class: 'term-limits', 'aria-live': 'polite' });
    this.element = h('section', { class: 'pane', 'aria-label': `terminal ${this.title()}` },
      h('div', { class: 'term-head' }, this.headEnv, this.headPath, this.headLimits,
        h('button', { type: 'button', class: 'logs-open ghost', title: "This container's log, beside the terminal", onclick: () => this.toggleLogs() }, 'Logs'),
        h('button', { type: 'button', class: 'files-open ghost', title: 'Upload or download a file in this container', onclick: () => this.toggleFiles() }, 'Files')),
      h('div', { class: 'term-body' }, this.searchBar, this.banner, this.host));
    this.observer = new ResizeObserver(() => this.scheduleFit());
  }

  title(): string {
    return tabTitle(this.target);
  }

  /// The logs pane beside the terminal, while open.
  logs: LogsPane | null = null;

  /// Opens the same pod/container's log beside the terminal, or closes it.
  toggleLogs(): void {
    if (this.logs) {
      this.logs.close();
      return;
    }
    const pane = new LogsPane(this.target, () => {
      if (this.logs === pane) this.logs = null;
      this.element.classList.remove('with-logs');
      this.fit();
    }, () => this.fit());
    this.logs = pane;
    this.element.classList.add('with-logs');
    this.element.appendChild(pane.element);
    pane.start();
    this.fit();
  }

  /// The file upload/download panel, while open.
  files: FilesPanel | null = null;

  /// Opens the file panel for this container, or closes it.
  toggleFiles(): void {
    if (this.files) {
      this.files.close();
      return;
    }
    const panel = new FilesPanel(this.target, () => {
      if (this.files === panel) this.files = null;
    });
    this.files = panel;
    this.element.appendChild(panel.element);
    panel.open();
  }

  /// The full path, as the terminal's header shows it.
  path(): string {
    return fullPath(this.target, this.cluster?.display_name);
  }

  /// What the cluster is (its display name, its environment): shown in the header and frame.
  setCluster(c: ClusterInfo | null): void {
    this.cluster = c;
    this.mark = environmentMark(c?.environment);
    this.headPath.textContent = this.path();
    this.headEnv.textContent = this.mark.text;
    this.headEnv.hidden = !this.mark.text;
    this.headEnv.classList.toggle('prod', this.mark.production);
    this.element.classList.toggle('prod', this.mark.production);
    this.element.setAttribute('aria-label', `terminal ${this.title()}${this.mark.text ? ' (' + this.mark.text + ')' : ''}`);
    this.onStateChange();
  }

  setFontSize(size: number): void {
    if (this.disposed || this.term.options.fontSize === size) return;
    this.term.options.fontSize = size;
    this.fit();
  }

  /// Updates the limits line; ticks every second while a countdown may be near.
  private showLimits(): void {
    window.clearTimeout(this.limitsTimer);
    const live = this.state === 'open' || this.state === 'reconnecting';
    const { text, near } = live ? limitsText(this.limits, Date.now(), this.sessionStart, this.activity) : { text: '', near: false };
    this.stats.limits = text;
    this.stats.limitsNear = near;
    this.headLimits.textContent = text;
    this.headLimits.classList.toggle('near', near);
    if (live && this.limits && !this.disposed) this.limitsTimer = window.setTimeout(() => this.showLimits(), 1000);
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
    this.logs?.close();
    this.files?.close();
    const ws = this.ws;
    this.ws = null;
    this.attached = false;
    ws?.close(1000, 'tab closed');
    this.stopReconnecting();
    this.closeStale();
    window.clearTimeout(this.fitTimer);
    this.observer.disconnect();
    window.clearTimeout(this.limitsTimer);
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
    this.showLimits();
    this.onStateChange();
  }

  /// A new session (the first, or after an ending).
  private connect(): void {
    this.stopReconnecting();
    this.closeStale();
    this.resumable = null;
    this.limits = null;
    this.offsets = new Offsets();
    this.queue = new InputQueue();
    Object.assign(this.stats, { resumable: false, offset: 0, rendered: 0, acked: 0, queuedInput: 0, refusedInput: 0 });
    this.setState('connecting');
    this.pending = [];
    this.lastSize = '';
    const url = new URL(this.execPath(), location.href);
    url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
    let ws: WebSocket;
    try {
      // `podgate.resume.v1` opts in to resume; podgate still picks v5 (and any other server
      // ignores the extra entry).
      ws = new WebSocket(url, NEW_SESSION_PROTOCOLS);
    } catch (e) {
      this.end({ title: 'Could not open the terminal', detail: String(e), retry: true });
      return;
    }
    this.attach(ws, 'new');
  }

  /// Wires `ws`, a new session's or a resume's, to this tab.
  private attach(ws: WebSocket, kind: Kind): void {
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.attached = false;
    let opened = false;
    let status: K8sStatus | null = null;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      opened = true;
      if (kind === 'resume') return; // nothing goes out before `resumed`
      this.stats.sessions++;
      this.attached = true;
      this.sessionStart = this.activity = Date.now();
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
      this.watch.heard();
      const b = new Uint8Array(ev.data);
      if (b.length <= 1) return; // the empty frame each stream opens with
      const payload = b.subarray(1);
      switch (b[0]) {
        case STDOUT:
        case STDERR: {
          this.stats.outputFrames++;
          this.activity = Date.now();
          if (endsMidCharacter(payload)) this.stats.splitFrames++;
          // Bytes, not text: xterm keeps a character split across frames until it is whole.
          const at = this.offsets.receive(payload.length);
          this.stats.offset = at;
          if (this.resumable) this.term.write(payload, () => this.rendered(at));
          else this.term.write(payload);
          break;
        }
        case STATUS:
          status = parseStatus(payload) ?? { message: new TextDecoder().decode(payload) };
          break;
        case CONTROL: {
          const m = decodeControl(payload);
          if (m?.type === 'hello' && kind === 'new' && !this.resumable) {
            this.limits = parseLimits(new TextDecoder().decode(payload));
            this.sessionStart = this.activity = Date.now();
            this.showLimits();
          }
          if (m) this.control(ws, kind, m);
          break;
        }
        case CLOSE:
          break;
      }
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.attached = false;
      this.watch.stop();
      if (this.state === 'ended') return;
      if (kind === 'resume' && this.state === 'reconnecting') {
        if (opened && ev.code !== 1006) {
          // podgate closed it without `resumed` (a refusal without its message).
          this.giveUp(ev.reason || `podgate closed the resume (WebSocket close code ${ev.code}).`, 'closed');
          return;
        }
        // An attempt that did not get through (or dropped before `resumed`): the next one.
        this.scheduleRetry();
        return;
      }
      if (!opened) {
        // A refused handshake reaches a page only as close code 1006, without the HTTP status
        // or the Status body: ask again.
        void this.explainRefusal();
        return;
      }
      // Gone without an exit status and without a close frame (a reset, a network change):
      // the session waits for this page in podgate, the process in the pod runs on.
      if (this.resumable && isDrop(ev.code, status !== null)) {
        this.dropped();
        return;
      }
      this.end(ending(status, { code: ev.code, reason: ev.reason }));
    };
  }

  /// A control message (channel 128) on `ws`.
  private control(ws: WebSocket, kind: Kind, m: ControlIn): void {
    switch (m.type) {
      case 'hello':
        if (kind !== 'new' || this.resumable) return;
        this.resumable = m;
        this.offsets.ackEvery = ackInterval(m.bufferBytes);
        this.stats.resumable = true;
        this.watch.start(m.heartbeatSeconds);
        return;
      case 'resumed':
        if (kind === 'resume' && this.state === 'reconnecting' && !this.attached) this.resumed(ws, m.offset, m.gap);
        return;
      case 'refused':
        if (kind !== 'resume') return;
        this.ws = null;
        ws.close();
        this.giveUp(refusedDetail(m.reason, m.message), m.reason);
        return;
      case 'heartbeat':
        this.stats.heartbeats++;
        if (this.attached) this.sendAck(this.offsets.heartbeat());
        return;
      case 'notice': {
        // podgate's own words: for the terminal, not output (not counted in the offset). Shown
        // on a line of their own in brackets, as podgate writes them for other clients.
        this.stats.lastControlNotice = m.text;
        this.term.write(`\r\n[${m.text.replace(/\r?\n/g, '\r\n')}]\r\n`);
        return;
      }
      case 'other':
        return;
    }
  }

  /// The terminal has processed the output up to `at`.
  private rendered(at: number): void {
    const ack = this.offsets.render(at);
    this.stats.rendered = this.offsets.rendered;
    if (ack !== null && this.attached) this.sendAck(ack);
  }

  private sendAck(offset: number): void {
    if (!this.ws || !this.attached || this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(ackFrame(offset));
    this.stats.acked = offset;
  }

  /// Nothing heard for 2 × heartbeat + 2 s: the link is dead even if the socket does not know.
  private deadLink(): void {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    this.attached = false;
    // Not closed now: a close frame that still reached podgate would end the session.
    if (ws.readyState === WebSocket.CONNECTING) ws.close();
    else this.stale.push(ws);
    if (this.state === 'reconnecting') {
      this.scheduleRetry();
      return;
    }
    this.stats.deadLinks++;
    this.dropped();
  }

  /// The connection is gone without an ending: reconnect to the same session until its window
  /// ends.
  private dropped(): void {
    const hello = this.resumable;
    if (!hello) return;
    this.stats.drops++;
    this.stats.reconnecting = true;
    this.toldRefused = false;
    this.deadline = WINDOW_CLOCK.now() + hello.windowSeconds * 1000;
    this.backoff.reset();
    this.banner.hidden = false;
    this.bannerNote.textContent = '';
    this.updateBanner();
    window.clearInterval(this.countdown);
    this.countdown = window.setInterval(() => this.updateBanner(), 1000);
    this.setState('reconnecting');
    this.scheduleRetry();
  }

  private updateBanner(): void {
    const now = WINDOW_CLOCK.now();
    const text = reconnectingText(this.deadline, now);
    this.bannerText.textContent = text;
    this.banner.title = `The session is kept for ${windowText(this.resumable?.windowSeconds ?? 0)} after a drop.`;
    this.stats.banner = this.banner.hidden ? '' : text;
    // The window is over and no attempt is in flight: nothing more to try.
    if (now >= this.deadline && !this.ws && this.state === 'reconnecting') this.scheduleRetry();
  }

  private scheduleRetry(): void {
    window.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const wait = this.backoff.next(WINDOW_CLOCK.now(), this.deadline);
    if (wait === null) {
      const w = windowText(this.resumable?.windowSeconds ?? 0);
      this.giveUp(`The connection did not come back within the session's resume window (${w}); podgate has ended the session.`, 'window');
      return;
    }
    this.retryTimer = window.setTimeout(() => this.attemptResume(), wait);
  }

  /// "Retry now" on the banner: the next attempt at once.
  private retryNow(): void {
    this.term.focus(); // typing goes on into the terminal (kept until the session is back)
    if (this.state !== 'reconnecting' || this.ws) return;
    window.clearTimeout(this.retryTimer);
    this.attemptResume();
  }

  private attemptResume(): void {
    this.retryTimer = undefined;
    const hello = this.resumable;
    if (!hello || this.state !== 'reconnecting' || this.disposed) return;
    const url = new URL(resumePath(hello.session), location.href);
    url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
    this.asked = this.offsets.received;
    this.stats.resumeAttempts++;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, resumeProtocols(hello.credential, this.asked));
    } catch (e) {
      this.giveUp(String(e), 'client');
      return;
    }
    this.attach(ws, 'resume');
    // A handshake or a `resumed` that never comes is a dead link too.
    this.watch.start(hello.heartbeatSeconds);
  }

  /// podgate answered the resume: output continues at `offset` (`gap` bytes skipped).
  private resumed(ws: WebSocket, offset: number, gap: number): void {
    const at = this.offsets.resumed(this.asked, offset, gap);
    const skipped = at - this.asked;
    this.stopReconnecting();
    this.closeStale();
    this.attached = true;
    this.stats.resumes++;
    this.stats.lastGap = skipped;
    this.stats.gapBytes += skipped;
    this.stats.offset = at;
    if (skipped > 0) {
      this.term.write(`\r\n\x1b[0m\x1b[1;33m${gapText(skipped)}\x1b[0m\r\n`);
      // What was rendered now reaches the new offset (once the terminal is through the rest).
      this.term.write('', () => this.rendered(at));
    }
    // The size first, in any case; after a gap a nudge (one row less, then the real size)
    // makes full-screen programs redraw what was skipped.
    this.fit();
    const { cols, rows } = this.term;
    if (skipped > 0) this.sendResize(ws, cols, rows > 1 ? rows - 1 : rows + 1);
    this.sendResize(ws, cols, rows);
    this.lastSize = `${cols}x${rows}`;
    // Then what was typed meanwhile.
    for (const f of this.queue.take()) ws.send(f);
    this.stats.queuedInput = 0;
    this.watch.start(this.resumable?.heartbeatSeconds ?? 5);
    this.setState('open');
  }

  private sendResize(ws: WebSocket, cols: number, rows: number): void {
    this.stats.resizes.push({ cols, rows });
    ws.send(resizeFrame(cols, rows));
  }

  /// The session cannot be resumed: the tab ends, offering a new session.
  private giveUp(detail: string, why: string): void {
    this.stopReconnecting();
    this.closeStale();
    const ws = this.ws;
    this.ws = null;
    this.attached = false;
    ws?.close();
    this.resumable = null;
    this.stats.resumable = false;
    this.stats.resumeFailure = why;
    this.end({ title: 'The session could not be resumed', detail, retry: true });
  }

  private stopReconnecting(): void {
    window.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    window.clearInterval(this.countdown);
    this.countdown = undefined;
    this.watch.stop();
    this.banner.hidden = true;
    this.banner.classList.remove('bell');
    this.stats.reconnecting = false;
    this.stats.banner = '';
  }

  private closeStale(): void {
    for (const ws of this.stale) ws.close();
    this.stale = [];
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
    this.stopReconnecting();
    this.closeStale();
    this.resumable = null;
    this.attached = false;
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
    this.activity = Date.now();
    // A big paste goes in pieces: the gateway refuses single messages past its limit.
    const frames: Uint8Array[] = [];
    for (let at = 1; at < frame.length; at += MAX_STDIN_CHUNK) {
      frames.push(frame.length <= MAX_STDIN_CHUNK + 1 ? frame : stdinFrame(frame.subarray(at, at + MAX_STDIN_CHUNK)));
    }
    if (this.state === 'connecting') {
      this.pending.push(...frames);
      return;
    }
    if (this.state === 'reconnecting' || !this.attached) {
      this.queueInput(frames);
      return;
    }
    for (const f of frames) this.ws?.send(f);
  }

  /// Input while disconnected: kept (up to 4 KiB) for after the resume; past that refused,
  /// with a bell and, once per outage, a line saying so.
  private queueInput(frames: Uint8Array[]): void {
    if (this.queue.push(frames)) {
      this.stats.queuedInput = this.queue.bytes;
      this.bannerNote.textContent = `${this.queue.bytes} of ${this.queue.limit} bytes typed are kept for when the session is back.`;
      return;
    }
    const n = frames.reduce((sum, f) => sum + f.length - 1, 0);
    this.stats.refusedInput += n;
    this.bannerNote.textContent = `Not connected: input past ${this.queue.limit / 1024} KiB is not kept (${this.stats.refusedInput} bytes refused).`;
    this.term.write('\x07');
    // A visual bell too (a tab's bell is silent by default).
    this.banner.classList.remove('bell');
    void this.banner.offsetWidth;
    this.banner.classList.add('bell');
    if (!this.toldRefused) {
      this.toldRefused = true;
      this.term.write(`\r\n\x1b[0m\x1b[1;31m[podgate: not connected: input past ${this.queue.limit / 1024} KiB is refused until the session is back]\x1b[0m\r\n`);
    }
  }

  private sendSize(force = false): void {
    const { cols, rows } = this.term;
    const key = `${cols}x${rows}`;
    if (!this.ws || !this.attached || this.ws.readyState !== WebSocket.OPEN || (!force && key === this.lastSize)) return;
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
