// The pages beside the terminals, by URL: `#/sessions`, `#/sessions/{id}/observe`,
// `#/recordings[?filters]` and `#/recordings/{id}` (the audit's end line names the recording
// id, so a link to a replay is just its id). Pure.

export type ViewRoute =
  | { view: 'sessions' }
  | { view: 'observe'; id: string }
  | { view: 'recordings'; filter: RecordingFilter; limit?: number }
  | { view: 'replay'; id: string };

/// What the recordings page filters by (as `GET /podgate/recordings` takes it).
export interface RecordingFilter {
  cluster?: string;
  namespace?: string;
  pod?: string;
  user?: string;
  /// RFC 3339.
  since?: string;
  until?: string;
}

export const FILTER_KEYS = ['cluster', 'namespace', 'pod', 'user', 'since', 'until'] as const;

/// What a page shows and gives up when another is shown.
export interface View {
  readonly element: HTMLElement;
  start(): void;
  dispose(): void;
  testView(): unknown;
  setTheme?(theme: 'light' | 'dark'): void;
}

const PATTERN = /^#\/(sessions|recordings)(?:\/([^/?]+))?(\/observe)?\/?(?:\?(.*))?$/;

export function parse(hash: string): ViewRoute | null {
  const m = PATTERN.exec(hash);
  if (!m) return null;
  let id: string | undefined;
  try {
    id = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
  } catch {
    return null; // a malformed %-escape
  }
  if (id === '') return null;
  if (m[1] === 'sessions') {
    if (id === undefined) return m[3] ? null : { view: 'sessions' };
    return m[3] ? { view: 'observe', id } : null;
  }
  if (m[3]) return null;
  if (id !== undefined) return { view: 'replay', id };
  const q = new URLSearchParams(m[4] ?? '');
  const filter: RecordingFilter = {};
  for (const k of FILTER_KEYS) {
    const v = q.get(k);
    if (v) filter[k] = v;
  }
  // A page size (1 to 500) only when the link asks for one.
  const limit = Number(q.get('limit'));
  return Number.isInteger(limit) && limit >= 1 && limit <= 500 ? { view: 'recordings', filter, limit } : { view: 'recordings', filter };
}

export function observeHash(id: string): string {
  return `#/sessions/${encodeURIComponent(id)}/observe`;
}

export function replayHash(id: string): string {
  return `#/recordings/${encodeURIComponent(id)}`;
}

export function recordingsHash(filter: RecordingFilter = {}, limit?: number): string {
  const q = filterQuery(filter) + (limit ? `${filterQuery(filter) ? '&' : ''}limit=${limit}` : '');
  return `#/recordings${q ? '?' + q : ''}`;
}

export function filterQuery(filter: RecordingFilter): string {
  const q = new URLSearchParams();
  for (const k of FILTER_KEYS) {
    const v = filter[k]?.trim();
    if (v) q.set(k, v);
  }
  return q.toString();
}

/// The path of a page of recordings: newest first, at most `limit`, after the page `cont` ended.
export function recordingsPath(filter: RecordingFilter, limit: number, cont?: string): string {
  const q = new URLSearchParams(filterQuery(filter));
  q.set('limit', String(limit));
  if (cont) q.set('continue', cont);
  return `/podgate/recordings?${q.toString()}`;
}
