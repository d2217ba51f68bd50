// What the page knows of each cluster (display name, environment) for marking tabs and
// terminals: what the picker listed, else one `/podgate/clusters` search for the id.

import { clustersPath, getJSON, type ClusterInfo, type ClusterPage } from './api';

const known = new Map<string, ClusterInfo>();
const asked = new Map<string, Promise<ClusterInfo | null>>();

export function remember(clusters: ClusterInfo[]): void {
  for (const c of clusters) known.set(c.id, c);
}

export function cached(id: string): ClusterInfo | undefined {
  return known.get(id);
}

/// The cluster `id` as `/podgate/clusters` describes it; null when it is not among the
/// clusters the person may use (or the list cannot be read).
export function lookup(id: string): Promise<ClusterInfo | null> {
  const k = known.get(id);
  if (k) return Promise.resolve(k);
  let p = asked.get(id);
  if (!p) {
    p = getJSON<ClusterPage>(clustersPath(id, 50))
      .then((page) => {
        remember(page.clusters);
        return page.clusters.find((c) => c.id === id) ?? null;
      })
      .catch(() => {
        asked.delete(id);
        return null;
      });
    asked.set(id, p);
  }
  return p;
}
