// Calls to the gateway with the session cookie (never a token in script).

import { parseStatus, type K8sStatus } from './protocol';

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly status: K8sStatus | null,
  ) {
    super(status?.message ?? `HTTP ${code}`);
  }
}

export async function getJSON<T>(path: string): Promise<T> {
  let resp: Response;
  try {
    resp = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  } catch (e) {
    throw new ApiError(0, { message: `podgate cannot be reached: ${String(e)}` });
  }
  const text = await resp.text();
  if (!resp.ok) throw new ApiError(resp.status, parseStatus(text));
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(resp.status, { message: `podgate answered ${path} with something that is not JSON` });
  }
}

/// The answer of a plain GET, as status code and parsed Status (for the exec probe).
export async function probe(path: string): Promise<{ code: number; status: K8sStatus | null }> {
  try {
    const resp = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    return { code: resp.status, status: parseStatus(await resp.text()) };
  } catch (e) {
    return { code: 0, status: { message: `podgate cannot be reached: ${String(e)}` } };
  }
}

/// One cheap authenticated request (who is logged in), for the login keepalive: it carries the
/// session cookie, and so refreshes a login near its expiry.
export async function checkLogin(): Promise<'ok' | 'unauthorized' | 'failed'> {
  try {
    const resp = await fetch('/podgate/whoami', { credentials: 'same-origin', headers: { Accept: 'application/json' }, cache: 'no-store' });
    await resp.text(); // read to the end, so the connection is reused
    if (resp.status === 401) return 'unauthorized';
    return resp.ok ? 'ok' : 'failed';
  } catch {
    return 'failed';
  }
}

export interface Whoami {
  user: string;
  groups: string[];
}
export interface ClusterInfo {
  id: string;
  /// The config's display_name, else the id.
  display_name?: string;
  environment?: string | null;
  labels?: Record<string, string>;
  up: boolean;
  /// When the gateway last probed it; absent or null before the first probe.
  checked_at?: string | null;
  version?: string | null;
  error?: string | null;
}

/// One page of `/podgate/clusters`: `continue` (with how many remain) when more match.
export interface ClusterPage {
  clusters: ClusterInfo[];
  continue?: string;
  remaining?: number;
}

/// The path of a page of clusters matching `search` (every word must match the id, display
/// name, environment or a `key=value` label), at most `limit`, after the page `cont` ended.
export function clustersPath(search: string, limit: number, cont?: string): string {
  const q = new URLSearchParams({ limit: String(limit) });
  if (search.trim()) q.set('search', search.trim());
  if (cont) q.set('continue', cont);
  return `/podgate/clusters?${q.toString()}`;
}

/// How a cluster reads in the picker: its name, the id when the name differs, its
/// environment, and whether it is up.
export function clusterLabel(c: ClusterInfo): string {
  const name = c.display_name && c.display_name !== c.id ? `${c.display_name} (${c.id})` : c.id;
  const env = c.environment ? ` [${c.environment}]` : '';
  // Before its first probe a cluster is neither up nor unreachable.
  const health = c.up
    ? `up${c.version ? ' (' + c.version + ')' : ''}`
    : c.checked_at || c.error
      ? `unreachable${c.error ? ': ' + c.error : ''}`
      : 'not checked yet';
  return `${name}${env} — ${health}`;
}
export interface Methods {
  dev: boolean;
  oidc: boolean;
}

/// The parts of a Pod the pickers show.
export interface Pod {
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: {
    containers?: { name: string }[];
    initContainers?: { name: string }[];
    ephemeralContainers?: { name: string }[];
  };
  status?: {
    phase?: string;
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
    ephemeralContainerStatuses?: ContainerStatus[];
  };
}
export interface ContainerStatus {
  name: string;
  ready?: boolean;
  state?: {
    running?: object;
    waiting?: { reason?: string };
    terminated?: { reason?: string; exitCode?: number };
  };
}

export function clusterPath(cluster: string, rest: string): string {
  return `/clusters/${encodeURIComponent(cluster)}${rest}`;
}
