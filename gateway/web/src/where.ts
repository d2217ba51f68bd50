// Knowing where you are: how a tab is titled, how a production cluster is marked, the pods
// used recently (kept in the browser), the session's limits, the terminal's font size and the
// copy/paste keys. Pure (storage is passed in).

import type { Target } from './route';

/// How a cluster's environment is marked: `production` (or `prod`) loudly, in words and in
/// colour (the `prod` class); any other environment in words only.
export interface EnvMark {
  production: boolean;
  /// The words shown: `PRODUCTION`, `STAGING`, ...; empty when the cluster has none.
  text: string;
  /// For a tab: `PROD`, or the environment's first 8 letters.
  short: string;
}

export function environmentMark(environment: string | null | undefined): EnvMark {
  const env = (environment ?? '').trim();
  if (!env) return { production: false, text: '', short: '' };
  const production = /^prod(uction)?$/i.test(env);
  const text = production ? 'PRODUCTION' : env.toUpperCase();
  return { production, text, short: production ? 'PROD' : text.slice(0, 8) };
}

/// A tab's title: the cluster first, then the pod and the container.
export function tabTitle(t: Target): string {
  return `${t.cluster} › ${t.pod}${t.container ? '/' + t.container : ''}`;
}

/// The full path of a terminal (the header of the active tab): cluster (with its display
/// name when it has one), namespace, pod, container, and the command when it is not a shell.
export function fullPath(t: Target, displayName?: string): string {
  const cluster = displayName && displayName !== t.cluster ? `${displayName} (${t.cluster})` : t.cluster;
  const parts = [cluster, t.namespace, t.pod];
  if (t.container) parts.push(t.container);
  let out = parts.join(' / ');
  if (t.command?.length) out += ` — ${t.command.join(' ')}`;
  return out;
}

/// Where something is kept (localStorage, or a map in tests).
export interface Store {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export const RECENT_KEY = 'podgate.recent';
/// Pods remembered, newest first.
export const RECENT_LIMIT = 8;

/// A pod used recently: where, and which container.
export interface Recent {
  cluster: string;
  namespace: string;
  pod: string;
  container?: string;
}

/// A non-empty name of at most 253 characters (a Kubernetes name, a cluster id).
export const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 253;

/// The JSON array stored under `key`; empty when absent, unreadable or not an array.
export function storedArray(store: Store | null, key: string): unknown[] {
  try {
    const raw: unknown = JSON.parse(store?.getItem(key) ?? '[]');
    return Array.isArray(raw) ? raw : [];
  } catch {
    return [];
  }
}

/// The pods used recently, newest first (whatever is malformed in storage is dropped).
export function loadRecent(store: Store | null): Recent[] {
  const out: Recent[] = [];
  for (const r of storedArray(store, RECENT_KEY)) {
    if (!r || typeof r !== 'object') continue;
    const { cluster, namespace, pod, container } = r as Record<string, unknown>;
    if (!str(cluster) || !str(namespace) || !str(pod)) continue;
    out.push(str(container) ? { cluster, namespace, pod, container } : { cluster, namespace, pod });
    if (out.length === RECENT_LIMIT) break;
  }
  return out;
}

/// Puts `t`'s pod first (once: the same pod in the same namespace and cluster is one entry,
/// with the container used last), keeps at most RECENT_LIMIT, and returns the new list.
export function rememberRecent(store: Store | null, t: Target): Recent[] {
  const entry: Recent = t.container
    ? { cluster: t.cluster, namespace: t.namespace, pod: t.pod, container: t.container }
    : { cluster: t.cluster, namespace: t.namespace, pod: t.pod };
  const list = [entry, ...loadRecent(store).filter((r) => !(r.cluster === t.cluster && r.namespace === t.namespace && r.pod === t.pod))]
    .slice(0, RECENT_LIMIT);
  try {
    store?.setItem(RECENT_KEY, JSON.stringify(list));
  } catch {
    // not remembered (storage full or disabled)
  }
  return list;
}

/// Orders `pods` (names) with the recently used ones of this cluster and namespace first, in
/// the order they were used; the rest keep their order.
export function recentFirst(names: string[], recent: Recent[], cluster: string, namespace: string): { recent: string[]; rest: string[] } {
  const here = recent.filter((r) => r.cluster === cluster && r.namespace === namespace).map((r) => r.pod);
  const present = new Set(names);
  const first = here.filter((p, i) => present.has(p) && here.indexOf(p) === i);
  const picked = new Set(first);
  return { recent: first, rest: names.filter((n) => !picked.has(n)) };
}

/// The limits podgate said the session runs under (the resume `hello`'s `limits`).
export interface Limits {
  idleTimeoutSeconds: number | null;
  maxDurationSeconds: number | null;
}

/// The `limits` of a control message (JSON), or null when it carries none.
export function parseLimits(json: string): Limits | null {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return null;
  }
  if (!v || typeof v !== 'object') return null;
  const m = v as Record<string, unknown>;
  if (m.type !== 'hello' || !m.limits || typeof m.limits !== 'object') return null;
  const l = m.limits as Record<string, unknown>;
  const secs = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) && x > 0 ? x : null);
  return { idleTimeoutSeconds: secs(l.idle_timeout_seconds), maxDurationSeconds: secs(l.max_duration_seconds) };
}

/// `1h 30m`, `15m`, `45s`, `2m 05s`.
export function humanDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h) return m ? `${h}h ${m}m` : `${h}h`;
  if (m) return r ? `${m}m ${String(r).padStart(2, '0')}s` : `${m}m`;
  return `${r}s`;
}

/// A countdown is shown once this little is left: a fifth of the limit, at least 60 s, at most 10 min.
export function nearThreshold(limitSeconds: number): number {
  return Math.min(600, Math.max(60, limitSeconds / 5));
}

/// What the header says about the limits, at `now` (ms), for a session that started at
/// `started` and last saw input or output at `activity`; `near` when a countdown shows.
export function limitsText(l: Limits | null, now: number, started: number, activity: number): { text: string; near: boolean } {
  if (!l || (!l.idleTimeoutSeconds && !l.maxDurationSeconds)) return { text: '', near: false };
  const parts: string[] = [];
  let near = false;
  if (l.idleTimeoutSeconds) {
    const left = l.idleTimeoutSeconds - (now - activity) / 1000;
    if (left <= nearThreshold(l.idleTimeoutSeconds)) {
      near = true;
      parts.push(`idle: ends in ${humanDuration(Math.max(0, left))} without input or output`);
    } else {
      parts.push(`idle timeout ${humanDuration(l.idleTimeoutSeconds)}`);
    }
  }
  if (l.maxDurationSeconds) {
    const left = l.maxDurationSeconds - (now - started) / 1000;
    if (left <= nearThreshold(l.maxDurationSeconds)) {
      near = true;
      parts.push(`maximum duration: ends in ${humanDuration(Math.max(0, left))}`);
    } else {
      parts.push(`maximum duration ${humanDuration(l.maxDurationSeconds)}`);
    }
  }
  return { text: parts.join(' · '), near };
}

export const FONT_KEY = 'podgate.fontSize';
export const FONT_SIZES = [10, 11, 12, 13, 14, 16, 18, 20, 24, 28, 32];
export const DEFAULT_FONT = 14;

/// The next size up (`+1`) or down (`-1`) from `current`; stays at the ends.
export function stepFont(current: number, dir: 1 | -1): number {
  if (dir > 0) return FONT_SIZES.find((s) => s > current) ?? FONT_SIZES[FONT_SIZES.length - 1];
  return [...FONT_SIZES].reverse().find((s) => s < current) ?? FONT_SIZES[0];
}

export function loadFont(store: Store | null): number {
  let v: number;
  try {
    v = Number(store?.getItem(FONT_KEY));
  } catch {
    return DEFAULT_FONT;
  }
  return FONT_SIZES.includes(v) ? v : DEFAULT_FONT;
}

export function saveFont(store: Store | null, size: number): void {
  try {
    store?.setItem(FONT_KEY, String(size));
  } catch {
    // not remembered
  }
}

/// The copy/paste and other terminal keys, as this platform names them.
export function shortcuts(mac: boolean): [string, string][] {
  const common: [string, string][] = [
    ['Select with the mouse', 'copy (copy on select)'],
    [mac ? '⌘C  or  Ctrl+Shift+C' : 'Ctrl+Shift+C  or  Ctrl+Insert', 'copy the selection'],
    [mac ? '⌘V  or  Ctrl+Shift+V' : 'Ctrl+Shift+V  or  Shift+Insert', 'paste'],
    ['Ctrl+Shift+F', 'find in the terminal'],
    ['A− / A+ in the header', 'smaller / larger font (remembered)'],
  ];
  return common;
}

export function isMac(platform: string): boolean {
  return /mac|iphone|ipad/i.test(platform);
}
