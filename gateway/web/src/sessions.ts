// The live sessions page (`#/sessions`): this replica's sessions the person may see, refreshed
// every few seconds, with a watch button, an end button (which asks for a reason) and a link to
// the session's recording, each shown only when podgate says the person may use it.

import { ApiError, getJSON } from './api';
import { clear, h } from './dom';
import { parseStatus } from './protocol';
import * as views from './views';

/// One live session, as `GET /podgate/sessions` lists it.
export interface LiveSession {
  id: string;
  user: string;
  cluster: string;
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  tty: boolean;
  started: string;
  client: string;
  bytes: { stdin: number; stdout: number; stderr: number };
  idle_seconds?: number;
  recording: string | null;
  observable: boolean;
  observers: number;
  replica: string;
  /// What the person asking may do to it (missing from an older gateway: nothing).
  may?: { observe?: boolean; terminate?: boolean };
  /// A browser session that can be resumed; `waiting_seconds` while its page is away.
  resume?: { waiting_seconds: number | null };
}

/// What the client column says: who is connected, and a dropped browser waiting to resume.
export function clientText(s: LiveSession): string {
  const base = `${s.client}${s.tty ? '' : ' (no tty)'}`;
  const waiting = s.resume?.waiting_seconds;
  if (typeof waiting !== 'number') return base;
  return `${base}, disconnected ${Math.floor(waiting)}s ago (waiting to resume)`;
}

export interface SessionList {
  replica: string;
  items: LiveSession[];
  may_replay?: boolean;
}

const REFRESH_MS = 3000;

/// `1.2 MB`-style byte counts.
export function bytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

/// The path that ends session `id`, with the reason the person gave.
export function terminatePath(id: string, reason: string): string {
  const q = new URLSearchParams();
  if (reason.trim()) q.set('reason', reason.trim());
  const qs = q.toString();
  return `/podgate/sessions/${encodeURIComponent(id)}${qs ? '?' + qs : ''}`;
}

export class SessionsPage implements views.View {
  readonly element: HTMLElement;
  private readonly body = h('tbody');
  private readonly status = h('p', { class: 'note', id: 'sessions-status', role: 'status' });
  private readonly error = h('p', { class: 'error', id: 'sessions-error', role: 'alert' });
  private timer: number | undefined;
  private disposed = false;
  /// The session whose end is being asked about (its reason form stays open across refreshes).
  private ending: string | null = null;
  private reasonInput: HTMLInputElement | null = null;
  last: SessionList | null = null;
  refreshes = 0;

  constructor() {
    this.element = h('section', { class: 'page sessions', 'aria-label': 'Live sessions' },
      h('div', { class: 'page-head' },
        h('h2', {}, 'Live sessions'),
        h('button', { type: 'button', id: 'sessions-refresh', onclick: () => void this.load() }, 'Refresh')),
      this.status, this.error,
      h('table', { class: 'list', id: 'sessions-table' },
        h('thead', {}, h('tr', {},
          ...['User', 'Cluster', 'Namespace / pod', 'Command', 'Client', 'Started', 'Output', 'Watching', ''].map((c) => h('th', {}, c)))),
        this.body));
  }

  start(): void {
    void this.load();
  }

  private async load(): Promise<void> {
    window.clearTimeout(this.timer);
    try {
      const list = await getJSON<SessionList>('/podgate/sessions');
      if (this.disposed) return;
      this.last = list;
      this.refreshes++;
      this.error.textContent = '';
      this.render(list);
    } catch (e) {
      if (this.disposed) return;
      this.error.textContent = `The sessions could not be listed: ${e instanceof ApiError || e instanceof Error ? e.message : String(e)}`;
    }
    if (!this.disposed) this.timer = window.setTimeout(() => void this.load(), REFRESH_MS);
  }

  private render(list: SessionList): void {
    const n = list.items.length;
    this.status.textContent = `${n === 0 ? 'No live sessions' : n === 1 ? '1 live session' : `${n} live sessions`} on replica ${list.replica} ` +
      '(with several replicas, each lists its own).';
    // Keep a reason being typed: the form is moved, not rebuilt.
    const typed = this.reasonInput?.value ?? '';
    clear(this.body);
    if (this.ending && !list.items.some((s) => s.id === this.ending)) this.ending = null;
    for (const s of list.items) {
      this.body.appendChild(this.row(s, list.may_replay === true));
      if (s.id === this.ending) this.body.appendChild(this.reasonRow(s, typed));
    }
  }

  private row(s: LiveSession, mayReplay: boolean): HTMLElement {
    const started = new Date(s.started);
    const actions = h('td', { class: 'actions' });
    if (s.may?.observe && s.observable) {
      actions.appendChild(h('a', { class: 'button observe', href: views.observeHash(s.id), title: 'Watch this session, read-only' }, 'Watch'));
    }
    if (mayReplay && s.recording) {
      actions.appendChild(h('a', { class: 'button replay', href: views.replayHash(s.recording), title: 'Replay its recording so far' }, 'Recording'));
    }
    if (s.may?.terminate) {
      actions.appendChild(h('button', {
        type: 'button', class: 'terminate', title: 'End this session',
        onclick: () => this.askReason(s.id),
      }, 'End…'));
    }
    const out = s.bytes.stdout + s.bytes.stderr;
    return h('tr', { 'data-session': s.id },
      h('td', {}, s.user),
      h('td', {}, s.cluster),
      h('td', {}, `${s.namespace} / ${s.pod}${s.container ? ' (' + s.container + ')' : ''}`),
      h('td', { class: 'command', title: s.command.join(' ') }, s.command.join(' ')),
      h('td', { class: s.resume?.waiting_seconds != null ? 'client waiting' : 'client' }, clientText(s)),
      h('td', { title: s.started }, Number.isNaN(started.getTime()) ? s.started : started.toLocaleTimeString()),
      h('td', {}, bytes(out)),
      h('td', { class: 'observers' }, String(s.observers)),
      actions);
  }

  private askReason(id: string): void {
    this.ending = id;
    if (this.last) this.render(this.last);
    this.reasonInput?.focus();
  }

  private reasonRow(s: LiveSession, typed: string): HTMLElement {
    const input = h('input', {
      type: 'text', class: 'reason', maxlength: 200, placeholder: 'Why (the person is told)', 'aria-label': 'Reason for ending the session',
    });
    input.value = typed;
    this.reasonInput = input;
    const said = h('span', { class: 'error' });
    const submit = async (ev: Event) => {
      ev.preventDefault();
      said.textContent = '';
      const answer = await terminate(s.id, input.value);
      if (answer) {
        said.textContent = answer;
        return;
      }
      this.ending = null;
      this.reasonInput = null;
      void this.load();
    };
    const form = h('form', { class: 'reason-form', onsubmit: (ev: Event) => void submit(ev) },
      h('label', {}, `End ${s.user}'s session on ${s.pod}: `), input,
      h('button', { type: 'submit', class: 'primary confirm-terminate' }, 'End session'),
      h('button', { type: 'button', class: 'ghost', onclick: () => { this.ending = null; this.reasonInput = null; if (this.last) this.render(this.last); } }, 'Cancel'),
      said);
    return h('tr', { class: 'reason-row' }, h('td', { colspan: 9 }, form));
  }

  testView(): unknown {
    return { kind: 'sessions', refreshes: this.refreshes, list: this.last };
  }

  dispose(): void {
    this.disposed = true;
    window.clearTimeout(this.timer);
    this.element.remove();
  }
}

/// Ends session `id`; null when podgate took it, else what went wrong.
export async function terminate(id: string, reason: string): Promise<string | null> {
  try {
    const resp = await fetch(terminatePath(id, reason), { method: 'DELETE', credentials: 'same-origin', headers: { Accept: 'application/json' } });
    const text = await resp.text();
    if (resp.ok) return null;
    return parseStatus(text)?.message ?? `HTTP ${resp.status}`;
  } catch (e) {
    return `podgate cannot be reached: ${String(e)}`;
  }
}
