// The replay of a recording (`#/recordings/{id}`; the audit's end line names the id): the
// `.cast` file fed into a read-only terminal, with play/pause, a slider to seek (back: the
// terminal is reset and the events up to the point are replayed at once), speeds and the
// markers (notices, observers, the end), each a link to its moment.

import { parseStatus } from './protocol';
import { endOf, isStreamMarker, parseCast, type Cast } from './asciicast';
import { CastTerminal } from './castterm';
import { clear, h, setOptions } from './dom';
import { Clock, SPEEDS, clock, countAt, seekPlan, termOps } from './timeline';
import type { ThemeName } from './theme';
import type { View } from './views';

/// The longest wait between two looks at the clock while playing (the slider moves this often).
const TICK_MS = 200;

export class ReplayView implements View {
  readonly element: HTMLElement;
  cast: Cast | null = null;
  /// Events applied to the terminal so far.
  applied = 0;
  error = '';
  private term: CastTerminal | null = null;
  private readonly clockNow = new Clock();
  private timer: number | undefined;
  private disposed = false;
  private duration = 0;
  /// A seek waiting for the terminal to finish drawing the one before.
  private deferred: number | null = null;
  private readonly title = h('h2', {}, 'Replay');
  private readonly info = h('p', { class: 'note', id: 'replay-info' });
  private readonly errorLine = h('p', { class: 'error', id: 'replay-error', role: 'alert' });
  private readonly playButton = h('button', { type: 'button', id: 'replay-play', class: 'primary', disabled: true }, '▶ Play');
  private readonly slider = h('input', { type: 'range', id: 'replay-seek', min: 0, max: 0, step: 1, value: 0, 'aria-label': 'Position', disabled: true });
  private readonly time = h('span', { class: 'time', id: 'replay-time' }, '0:00 / 0:00');
  private readonly speed = h('select', { id: 'replay-speed', 'aria-label': 'Speed' });
  private readonly markerList = h('ol', { class: 'markers', id: 'replay-markers', 'aria-label': 'Markers' });
  private readonly termPane = h('div', { class: 'cast-pane' });

  constructor(readonly id: string, private theme: ThemeName) {
    setOptions(this.speed, SPEEDS.map((s) => [String(s), `${s}×`]), '1');
    this.playButton.addEventListener('click', () => this.toggle());
    this.slider.addEventListener('input', () => this.seek(Number(this.slider.value) / 1000));
    this.speed.addEventListener('change', () => {
      this.clockNow.setSpeed(Number(this.speed.value) || 1, performance.now());
      this.schedule();
    });
    const download = h('a', { class: 'button ghost', href: this.filePath(), download: `${id}.cast` }, 'Download .cast');
    this.element = h('section', { class: 'page replay', 'aria-label': 'Replay' },
      h('div', { class: 'page-head' }, this.title, h('a', { class: 'button ghost', href: '#/recordings' }, '← Recordings'), download),
      this.info, this.errorLine,
      h('div', { class: 'player' }, this.playButton, this.slider, this.time, this.speed),
      this.termPane, this.markerList);
  }

  private filePath(): string {
    return `/podgate/recordings/${encodeURIComponent(this.id)}`;
  }

  start(): void {
    void this.load();
  }

  private async load(): Promise<void> {
    let text: string;
    try {
      const resp = await fetch(this.filePath(), { credentials: 'same-origin', headers: { Accept: 'application/x-asciicast, application/json' }, cache: 'no-store' });
      text = await resp.text();
      if (!resp.ok) {
        this.fail(`The recording cannot be replayed (HTTP ${resp.status}): ${parseStatus(text)?.message ?? text.slice(0, 200)}`);
        return;
      }
    } catch (e) {
      this.fail(`podgate cannot be reached: ${String(e)}`);
      return;
    }
    if (this.disposed) return;
    const cast = parseCast(text);
    if (typeof cast === 'string') {
      this.fail(`This is not a recording podgate can replay: ${cast}`);
      return;
    }
    this.cast = cast;
    const p = cast.header.podgate;
    this.title.textContent = p ? `Replay: ${p.user} on ${p.cluster} / ${p.namespace} / ${p.pod}` : `Replay: ${cast.header.title ?? this.id}`;
    const started = cast.header.timestamp ? new Date(cast.header.timestamp * 1000).toLocaleString() : 'an unknown time';
    this.info.textContent = `Recording ${this.id}: started ${started}${p?.command?.length ? `, ran ${p.command.join(' ')}` : ''}` +
      `${p?.client ? ` from ${p.client}` : ''}${cast.skipped ? ` (${cast.skipped} unreadable lines skipped)` : ''}.`;
    this.duration = cast.events.length ? cast.events[cast.events.length - 1].time : 0;
    this.slider.max = String(Math.ceil(this.duration * 1000));
    this.slider.disabled = false;
    this.playButton.disabled = false;
    this.term = new CastTerminal(this.theme, cast.header.width, cast.header.height, cast.header.podgate?.tty !== false);
    this.term.mount(this.termPane);
    this.listMarkers(cast);
    this.seek(0);
  }

  private listMarkers(cast: Cast): void {
    clear(this.markerList);
    for (const e of cast.events) {
      if (e.code !== 'm' || isStreamMarker(e.data)) continue;
      const end = endOf(e.data);
      this.markerList.appendChild(h('li', { class: end ? 'end' : '' },
        h('button', { type: 'button', class: 'ghost at', title: 'Go to this moment', onclick: () => this.seek(e.time) }, clock(e.time)),
        ' ', e.data));
    }
  }

  private fail(why: string): void {
    if (this.disposed) return;
    this.error = why;
    this.errorLine.textContent = why;
  }

  /// Shows the screen at `position` seconds, from wherever the terminal is now. While the
  /// terminal is still drawing an earlier seek (a slider dragged through a long recording),
  /// only the last position asked for is drawn next, not every one on the way.
  seek(position: number): void {
    const cast = this.cast;
    const term = this.term;
    if (!cast || !term) return;
    const pos = Math.min(Math.max(0, position), this.duration);
    this.clockNow.set(pos, performance.now());
    if (term.pending > 0) {
      this.deferred = pos;
      this.time.textContent = `${clock(pos)} / ${clock(this.duration)}`;
      return;
    }
    this.moveTo(pos);
    this.schedule();
  }

  /// The terminal caught up: draws the seek that waited for it.
  private caughtUp(): void {
    const pos = this.deferred;
    if (pos === null || this.disposed) return;
    this.deferred = null;
    this.seek(pos);
  }

  private moveTo(pos: number): void {
    const cast = this.cast;
    const term = this.term;
    if (!cast || !term) return;
    const plan = seekPlan(this.applied, countAt(cast.events, pos));
    if (plan.reset) term.reset(cast.header.width, cast.header.height);
    term.apply(termOps(cast.events, plan.from, plan.to), () => this.caughtUp());
    this.applied = plan.to;
    this.slider.value = String(Math.round(pos * 1000));
    this.time.textContent = `${clock(pos)} / ${clock(this.duration)}`;
  }

  private toggle(): void {
    const now = performance.now();
    if (this.clockNow.playing) {
      this.clockNow.pause(now);
    } else {
      // Play at the end starts over.
      if (this.clockNow.at(now) >= this.duration) this.seek(0);
      this.clockNow.play(now);
    }
    this.playButton.textContent = this.clockNow.playing ? '❚❚ Pause' : '▶ Play';
    this.schedule();
  }

  /// Plays on: applies what is due now, then waits for the next event (or a tick).
  private schedule(): void {
    window.clearTimeout(this.timer);
    const cast = this.cast;
    if (!cast || !this.clockNow.playing || this.disposed) return;
    const now = performance.now();
    let pos = this.clockNow.at(now);
    if (pos >= this.duration) {
      pos = this.duration;
      this.clockNow.pause(now);
      this.clockNow.set(pos, now);
      this.playButton.textContent = '▶ Play';
    }
    this.moveTo(pos);
    if (!this.clockNow.playing) return;
    const next = cast.events[this.applied];
    const wait = next ? ((next.time - pos) / this.clockNow.speed) * 1000 : TICK_MS;
    this.timer = window.setTimeout(() => this.schedule(), Math.max(0, Math.min(TICK_MS, wait)));
  }

  setTheme(theme: ThemeName): void {
    this.theme = theme;
    this.term?.setTheme(theme);
  }

  testView(): unknown {
    return {
      kind: 'replay',
      id: this.id,
      error: this.error,
      loaded: this.cast !== null,
      events: this.cast?.events.length ?? 0,
      applied: this.applied,
      duration: this.duration,
      position: this.clockNow.at(performance.now()),
      playing: this.clockNow.playing,
      speed: this.clockNow.speed,
      markers: this.cast?.events.filter((e) => e.code === 'm' && !isStreamMarker(e.data)).map((e) => e.data) ?? [],
      text: this.term?.text() ?? '',
      cols: this.term?.term.cols ?? 0,
      rows: this.term?.term.rows ?? 0,
      pending: (this.term?.pending ?? 0) + (this.deferred !== null ? 1 : 0),
    };
  }

  dispose(): void {
    this.disposed = true;
    window.clearTimeout(this.timer);
    this.term?.dispose();
    this.element.remove();
  }
}
