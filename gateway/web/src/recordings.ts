// The recordings page (`#/recordings`): recorded sessions, newest first, filtered by cluster,
// namespace, pod, user and time, a page at a time (`continue`), each linking to its replay.
// Only for people allowed to replay (`operators.replay`); anyone else reads podgate's refusal.

import { ApiError, getJSON } from './api';
import { clear, h } from './dom';
import * as views from './views';

/// One recording, as `GET /podgate/recordings` lists it.
export interface RecordingEntry {
  id: string;
  session_id: string;
  cluster: string;
  namespace: string;
  pod: string;
  container: string;
  user: string;
  client: string;
  command: string[];
  tty: boolean;
  started: string;
  duration_seconds: number;
  bytes: number;
  outcome: string | null;
  exit_code: number | null;
  truncated: boolean;
}

export interface RecordingList {
  items: RecordingEntry[];
  continue?: string | null;
}

const PAGE = 50;

/// A `datetime-local` value (the browser's local time) as RFC 3339 UTC; '' when empty or not a time.
export function localToRfc3339(v: string): string {
  if (!v) return '';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/// An RFC 3339 time as a `datetime-local` value in the browser's time.
export function rfc3339ToLocal(v: string | undefined): string {
  if (!v) return '';
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function outcomeText(e: RecordingEntry): string {
  if (!e.outcome) return 'live or cut short';
  const code = e.exit_code !== null && e.exit_code !== undefined ? ` (${e.exit_code})` : '';
  return `${e.outcome.replace(/_/g, ' ')}${code}${e.truncated ? ', truncated' : ''}`;
}

export class RecordingsPage implements views.View {
  readonly element: HTMLElement;
  private readonly body = h('tbody');
  private readonly error = h('p', { class: 'error', id: 'recordings-error', role: 'alert' });
  private readonly status = h('p', { class: 'note', id: 'recordings-status', role: 'status' });
  private readonly inputs: Record<string, HTMLInputElement> = {};
  private readonly next = h('button', { type: 'button', id: 'recordings-next', hidden: true }, 'Next page →');
  private readonly first = h('button', { type: 'button', id: 'recordings-first', hidden: true }, '← First page');
  private disposed = false;
  /// The tokens of the pages shown so far (none for the first).
  private cont: string | undefined;
  last: RecordingList | null = null;
  pages = 0;

  constructor(private readonly filter: views.RecordingFilter, private readonly limit = PAGE) {
    const field = (key: keyof views.RecordingFilter, label: string, type = 'text') => {
      const input = h('input', { type, id: `recordings-${key}`, name: key });
      input.value = type === 'datetime-local' ? rfc3339ToLocal(filter[key]) : (filter[key] ?? '');
      this.inputs[key] = input;
      return h('div', { class: 'field' }, h('label', { for: `recordings-${key}` }, label), input);
    };
    const form = h('form', { class: 'fields filters', onsubmit: (ev: Event) => { ev.preventDefault(); this.apply(); } },
      field('cluster', 'Cluster'), field('namespace', 'Namespace'), field('pod', 'Pod'), field('user', 'User'),
      field('since', 'Started after', 'datetime-local'), field('until', 'Started before', 'datetime-local'),
      h('div', { class: 'field' }, h('label', {}, '\u00a0'), h('button', { type: 'submit', class: 'primary', id: 'recordings-search' }, 'Search')));
    this.next.addEventListener('click', () => void this.load(this.last?.continue ?? undefined));
    this.first.addEventListener('click', () => void this.load(undefined));
    this.element = h('section', { class: 'page recordings', 'aria-label': 'Recordings' },
      h('div', { class: 'page-head' }, h('h2', {}, 'Recordings')),
      form, this.error, this.status,
      h('table', { class: 'list', id: 'recordings-table' },
        h('thead', {}, h('tr', {}, ...['Started', 'User', 'Cluster', 'Namespace / pod', 'Command', 'Client', 'Length', 'Size', 'Ended', ''].map((c) => h('th', {}, c)))),
        this.body),
      h('div', { class: 'pager' }, this.first, this.next));
  }

  start(): void {
    void this.load(undefined);
  }

  /// The filter as typed, into the URL (which shows the page again, from its start).
  private apply(): void {
    const f: views.RecordingFilter = {};
    for (const k of views.FILTER_KEYS) {
      const v = this.inputs[k].type === 'datetime-local' ? localToRfc3339(this.inputs[k].value) : this.inputs[k].value.trim();
      if (v) f[k] = v;
    }
    const hash = views.recordingsHash(f, this.limit !== PAGE ? this.limit : undefined);
    if (location.hash === hash) {
      Object.assign(this.filter, f);
      void this.load(undefined);
    } else {
      location.hash = hash;
    }
  }

  private async load(cont: string | undefined): Promise<void> {
    this.error.textContent = '';
    try {
      const list = await getJSON<RecordingList>(views.recordingsPath(this.filter, this.limit, cont));
      if (this.disposed) return;
      this.last = list;
      this.cont = cont;
      this.pages++;
      this.render(list);
    } catch (e) {
      if (this.disposed) return;
      const why = e instanceof ApiError || e instanceof Error ? e.message : String(e);
      this.error.textContent = `The recordings could not be listed: ${why}`;
    }
  }

  private render(list: RecordingList): void {
    clear(this.body);
    for (const e of list.items) {
      const started = new Date(e.started);
      this.body.appendChild(h('tr', { 'data-recording': e.id },
        h('td', { title: e.started }, Number.isNaN(started.getTime()) ? e.started : started.toLocaleString()),
        h('td', {}, e.user),
        h('td', {}, e.cluster),
        h('td', {}, `${e.namespace} / ${e.pod}${e.container ? ' (' + e.container + ')' : ''}`),
        h('td', { class: 'command', title: e.command.join(' ') }, e.command.join(' ')),
        h('td', {}, e.client),
        h('td', {}, `${e.duration_seconds.toFixed(1)} s`),
        h('td', {}, `${e.bytes} B`),
        h('td', {}, outcomeText(e)),
        h('td', { class: 'actions' }, h('a', { class: 'button replay', href: views.replayHash(e.id) }, 'Replay'))));
    }
    const n = list.items.length;
    this.status.textContent = n === 0 ? 'No recordings match.' : `${n} recording${n === 1 ? '' : 's'}${this.cont ? ' (a later page)' : ''}, newest first.`;
    this.next.hidden = !list.continue;
    this.first.hidden = !this.cont;
  }

  testView(): unknown {
    return { kind: 'recordings', pages: this.pages, list: this.last, error: this.error.textContent, paged: Boolean(this.cont) };
  }

  dispose(): void {
    this.disposed = true;
    this.element.remove();
  }
}
