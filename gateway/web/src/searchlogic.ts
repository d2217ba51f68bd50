// The pod search's logic, without the DOM (unit-tested in tests/search.test.ts): which
// clusters a search names (the chosen one, then the recently used ones, kept in the browser),
// the request path, reading the gateway's answer, keyboard movement and the words shown.

import { type Store, storedArray, str as id } from './where';

export const RECENT_CLUSTERS_KEY = 'podgate.recentClusters';
/// Clusters a search names at most (the gateway's default `pod_index.max_clusters_per_search`).
export const SEARCH_CLUSTERS = 5;
/// Clusters remembered.
export const RECENT_CLUSTERS_LIMIT = 8;

export function loadRecentClusters(store: Store | null): string[] {
  const out: string[] = [];
  for (const c of storedArray(store, RECENT_CLUSTERS_KEY)) {
    if (id(c) && !out.includes(c)) out.push(c);
    if (out.length === RECENT_CLUSTERS_LIMIT) break;
  }
  return out;
}

/// Puts `cluster` first among the recently used clusters; the new list.
export function rememberCluster(store: Store | null, cluster: string): string[] {
  if (!id(cluster)) return loadRecentClusters(store);
  const list = [cluster, ...loadRecentClusters(store).filter((c) => c !== cluster)].slice(0, RECENT_CLUSTERS_LIMIT);
  try {
    store?.setItem(RECENT_CLUSTERS_KEY, JSON.stringify(list));
  } catch {
    // not remembered
  }
  return list;
}

/// The clusters to search: the chosen one, then the recent ones, at most `max`.
export function searchClusters(chosen: string, recent: string[], max = SEARCH_CLUSTERS): string[] {
  const out: string[] = [];
  for (const c of [chosen, ...recent]) {
    if (id(c) && !out.includes(c)) out.push(c);
  }
  return out.slice(0, Math.max(0, max));
}

export function searchPath(q: string, clusters: string[], limit = 50): string {
  const p = new URLSearchParams();
  p.set('q', q.trim());
  for (const c of clusters) p.append('cluster', c);
  p.set('limit', String(limit));
  return `/podgate/pods/search?${p.toString()}`;
}

export interface PodHit {
  cluster: string;
  namespace: string;
  pod: string;
  phase: string;
  ready: string;
  restarts: number;
  ageSeconds: number | null;
  node: string;
  owner: string | null;
}

export interface ClusterState {
  cluster: string;
  state: 'syncing' | 'ready' | 'error';
  message: string | null;
  truncated: boolean;
  matched: number;
  unchecked: number;
}

export interface SearchAnswer {
  hits: PodHit[];
  matched: number;
  clusters: ClusterState[];
}

const text = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/// Reads the gateway's answer; whatever is malformed is left out.
export function parseAnswer(raw: unknown): SearchAnswer {
  const o = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  const hits: PodHit[] = [];
  for (const r of Array.isArray(o.results) ? o.results : []) {
    if (!r || typeof r !== 'object') continue;
    const x = r as Record<string, unknown>;
    if (!id(x.cluster) || !id(x.namespace) || !id(x.pod)) continue;
    const owner = x.owner && typeof x.owner === 'object' ? (x.owner as Record<string, unknown>) : null;
    hits.push({
      cluster: x.cluster, namespace: x.namespace, pod: x.pod,
      phase: text(x.phase), ready: text(x.ready), restarts: num(x.restarts),
      ageSeconds: typeof x.age_seconds === 'number' ? x.age_seconds : null,
      node: text(x.node),
      owner: owner && text(owner.name) ? `${text(owner.kind)}/${text(owner.name)}` : null,
    });
  }
  const clusters: ClusterState[] = [];
  for (const c of Array.isArray(o.clusters) ? o.clusters : []) {
    if (!c || typeof c !== 'object') continue;
    const x = c as Record<string, unknown>;
    const state = x.state === 'ready' || x.state === 'syncing' ? x.state : 'error';
    clusters.push({
      cluster: text(x.cluster), state, message: typeof x.message === 'string' ? x.message : null,
      truncated: x.truncated === true, matched: num(x.matched), unchecked: num(x.unchecked_namespaces),
    });
  }
  return { hits, matched: num(o.matched), clusters };
}

/// Whether the answer should be asked again soon (a cluster still listing its pods).
export function syncing(a: SearchAnswer): boolean {
  return a.clusters.some((c) => c.state === 'syncing');
}

/// The notes to show beside the results: per cluster that is not simply ready, and totals.
export function notes(a: SearchAnswer): string[] {
  const out: string[] = [];
  for (const c of a.clusters) {
    if (c.state === 'syncing') out.push(`${c.cluster}: still loading its pods…`);
    else if (c.state === 'error') out.push(`${c.cluster}: ${c.message ?? 'error'}`);
    else if (c.message) out.push(`${c.cluster}: ${c.message}`);
    if (c.truncated) out.push(`${c.cluster}: has more pods than podgate indexes; some are not searched.`);
  }
  if (a.matched > a.hits.length) out.push(`Showing ${a.hits.length} of ${a.matched}; type more to narrow.`);
  return out;
}

/// The next active row for a key: -1 is none (nothing is preselected).
export function move(current: number, key: string, count: number): number {
  if (count <= 0) return -1;
  if (key === 'ArrowDown') return current < 0 ? 0 : Math.min(count - 1, current + 1);
  if (key === 'ArrowUp') return current <= 0 ? (current < 0 ? -1 : 0) : current - 1;
  if (key === 'Home') return 0;
  if (key === 'End') return count - 1;
  return Math.min(current, count - 1);
}

/// kubectl's age: 5s, 3m, 2h, 4d.
export function age(seconds: number | null): string {
  if (seconds === null || seconds < 0) return '';
  if (seconds < 120) return `${Math.floor(seconds)}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}
