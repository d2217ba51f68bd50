// Watching a live session, read-only (`#/sessions/{id}/observe`): podgate's observe WebSocket
// sends the session's recording from its start (header, then events, one asciicast line per
// text message), then each new event as it happens; this view feeds them into a terminal, so
// the screen is the watched person's, full-screen programs included. Nothing is ever sent.

import { probe } from './api';
import { endOf, isStreamMarker, parseEvent, parseHeader, type CastHeader } from './asciicast';
import { CastTerminal } from './castterm';
import { h } from './dom';
import { termOps } from './timeline';
import type { ThemeName } from './theme';
import type { View } from './views';

/// Markers kept on screen (the newest).
const MARKERS_SHOWN = 50;

export type ObserveState = 'connecting' | 'watching' | 'ended';

export class ObserveView implements View {
  readonly element: HTMLElement;
  state: ObserveState = 'connecting';
  header: CastHeader | null = null;
  markers: { time: number; text: string }[] = [];
  /// What ended the watch, as shown.
  ending = '';
  private cast: CastTerminal | null = null;
  private ws: WebSocket | null = null;
  private readonly title = h('h2', {}, 'Watching a session');
  private readonly banner = h('p', { class: 'note', id: 'observe-status', role: 'status' }, 'Connecting…');
  private readonly markerList = h('ul', { class: 'markers', id: 'observe-markers', 'aria-label': 'Markers' });
  private readonly termPane = h('div', { class: 'cast-pane' });
  /// Offered when watching stopped while the session may still run (a lost connection, an
  /// observer that fell behind): a new watch starts from the recording's start again.
  private readonly again = h('button', { type: 'button', id: 'observe-again', hidden: true }, 'Watch again');
  /// Whether the recording said the session ended (then there is nothing more to watch).
  private sessionEnded = false;
  private disposed = false;

  constructor(readonly id: string, private theme: ThemeName) {
    this.element = h('section', { class: 'page observe', 'aria-label': 'Watching a session' },
      h('div', { class: 'page-head' }, this.title, this.again, h('a', { class: 'button ghost', href: '#/sessions' }, '← Sessions')),
      this.banner, this.termPane, this.markerList);
  }

  start(): void {
    this.again.addEventListener('click', () => this.restart());
    this.connect();
  }

  private restart(): void {
    this.again.hidden = true;
    this.banner.classList.remove('ended');
    this.cast?.dispose();
    this.cast = null;
    this.header = null;
    this.markers = [];
    this.markerList.replaceChildren();
    this.ending = '';
    this.state = 'connecting';
    this.setBanner('Connecting…');
    this.connect();
  }

  private connect(): void {
    const path = `/podgate/sessions/${encodeURIComponent(this.id)}/observe`;
    const url = new URL(path, location.href);
    url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      this.end(`The session cannot be watched: ${String(e)}`);
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (this.ws !== ws || typeof ev.data !== 'string') return;
      this.line(ev.data);
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (!opened) {
        // A browser is told nothing about a refused upgrade: ask the same path as a plain GET.
        void probe(path).then(({ code, status }) => {
          this.end(`The session cannot be watched${code ? ` (HTTP ${code})` : ''}: ${status?.message ?? 'podgate refused'}`);
        });
        return;
      }
      // The end marker says how the session ended; without one, the close says why watching stopped.
      this.end(this.ending || (ev.reason ? `Stopped watching: ${ev.reason}` : `The connection closed (code ${ev.code}).`));
    };
  }

  private line(text: string): void {
    if (!this.header) {
      const header = parseHeader(text);
      if (typeof header === 'string') {
        this.end(`podgate sent something that is not a recording: ${header}`);
        this.ws?.close(1000);
        return;
      }
      this.header = header;
      const p = header.podgate;
      this.title.textContent = p ? `Watching ${p.user} on ${p.cluster} / ${p.namespace} / ${p.pod}` : 'Watching a session';
      this.cast = new CastTerminal(this.theme, header.width, header.height, header.podgate?.tty !== false);
      this.cast.mount(this.termPane);
      this.state = 'watching';
      this.setBanner('Watching, read-only: what you type goes nowhere.');
      return;
    }
    const e = parseEvent(text);
    if (!e || !this.cast) return;
    if (e.code === 'm') {
      const end = endOf(e.data);
      if (end) {
        this.sessionEnded = true;
        this.ending = `The session ended (${end.outcome.replace(/_/g, ' ')}${end.exitCode !== null ? `, exit code ${end.exitCode}` : ''})` +
          (end.message ? `: ${end.message}` : '.');
      }
      if (!isStreamMarker(e.data)) this.marker(e.time, e.data);
      return;
    }
    this.cast.apply(termOps([e], 0, 1));
  }

  private marker(time: number, text: string): void {
    this.markers.push({ time, text });
    if (this.markers.length > MARKERS_SHOWN) this.markers.shift();
    this.markerList.appendChild(h('li', {}, h('span', { class: 'at' }, `${time.toFixed(1)} s`), ' ', text));
    while (this.markerList.children.length > MARKERS_SHOWN) this.markerList.firstElementChild?.remove();
  }

  private setBanner(text: string): void {
    this.banner.textContent = text;
  }

  private end(text: string): void {
    if (this.disposed) return;
    this.ending = text;
    this.state = 'ended';
    this.setBanner(text);
    this.banner.classList.add('ended');
    this.again.hidden = this.sessionEnded;
  }

  setTheme(theme: ThemeName): void {
    this.theme = theme;
    this.cast?.setTheme(theme);
  }

  testView(): unknown {
    return {
      kind: 'observe',
      id: this.id,
      state: this.state,
      ending: this.ending,
      banner: this.banner.textContent,
      markers: this.markers,
      text: this.cast?.text() ?? '',
      cols: this.cast?.term.cols ?? 0,
      rows: this.cast?.term.rows ?? 0,
      pending: this.cast?.pending ?? 0,
    };
  }

  dispose(): void {
    this.disposed = true;
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000, 'stopped watching');
    this.cast?.dispose();
    this.element.remove();
  }
}
