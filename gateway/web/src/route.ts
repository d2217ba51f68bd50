// Deep links: `#/clusters/{id}/namespaces/{ns}/pods/{pod}?container=c&command=...`.

export interface Target {
  cluster: string;
  namespace: string;
  pod: string;
  container?: string;
  /// argv to run; empty means the automatic shell.
  command?: string[];
}

const PATTERN = /^#\/clusters\/([^/?]+)\/namespaces\/([^/?]+)\/pods\/([^/?]+)\/?(?:\?(.*))?$/;

export function parse(hash: string): Target | null {
  const m = PATTERN.exec(hash);
  if (!m) return null;
  try {
    const q = new URLSearchParams(m[4] ?? '');
    const command = q.getAll('command');
    return {
      cluster: decodeURIComponent(m[1]),
      namespace: decodeURIComponent(m[2]),
      pod: decodeURIComponent(m[3]),
      container: q.get('container') || undefined,
      command: command.length ? command : undefined,
    };
  } catch {
    return null; // a malformed %-escape
  }
}

export function format(t: Target): string {
  const e = encodeURIComponent;
  const q = new URLSearchParams();
  if (t.container) q.set('container', t.container);
  for (const c of t.command ?? []) q.append('command', c);
  const qs = q.toString();
  return `#/clusters/${e(t.cluster)}/namespaces/${e(t.namespace)}/pods/${e(t.pod)}${qs ? '?' + qs : ''}`;
}

export function same(a: Target, b: Target): boolean {
  return format(a) === format(b);
}
