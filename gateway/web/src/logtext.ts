// The logs pane's pure parts: the `pods/log` URL, a bounded buffer of lines fed by chunks of a
// stream (oldest dropped, counted for a marker), search matches, and the API's Status message.

export interface LogOptions {
  container?: string;
  follow: boolean;
  previous: boolean;
  timestamps: boolean;
  /// Lines from the end to start with (none: the whole log).
  tailLines?: number;
}

/// The gateway path of a pod's log (`/clusters/{id}/api/v1/namespaces/{ns}/pods/{pod}/log?…`).
export function logPath(cluster: string, namespace: string, pod: string, o: LogOptions): string {
  const q = new URLSearchParams();
  if (o.container) q.set('container', o.container);
  if (o.follow) q.set('follow', 'true');
  if (o.previous) q.set('previous', 'true');
  if (o.timestamps) q.set('timestamps', 'true');
  if (o.tailLines !== undefined) q.set('tailLines', String(o.tailLines));
  const e = encodeURIComponent;
  return `/clusters/${e(cluster)}/api/v1/namespaces/${e(namespace)}/pods/${e(pod)}/log?${q}`;
}

export const MAX_LINES = 10_000;
export const MAX_BYTES = 5 * 1024 * 1024;
/// The longest line kept whole: a log that never writes a newline is broken into lines of this
/// size rather than assembled without bound.
export const MAX_LINE = 64 * 1024;

/// Lines of a log, at most `maxLines` and about `maxBytes` (UTF-16 code units of the text),
/// the oldest dropped first. A chunk may end mid-line: that part waits for the rest.
export class LogBuffer {
  lines: string[] = [];
  /// Lines dropped from the front, in all.
  dropped = 0;
  /// Lines ever completed (dropped + kept), so a view can tell what is new.
  total = 0;
  private partial = '';
  private size = 0;
  private head = 0;

  constructor(readonly maxLines = MAX_LINES, readonly maxBytes = MAX_BYTES, readonly maxLine = MAX_LINE) {}

  /// Adds decoded text; returns how many lines it completed.
  push(text: string): number {
    const parts = (this.partial + text).split('\n');
    let rest = parts.pop() ?? '';
    for (const p of parts) this.add(p.endsWith('\r') ? p.slice(0, -1) : p);
    let done = parts.length;
    for (; rest.length > this.maxLine; done++) {
      this.add(rest.slice(0, this.maxLine));
      rest = rest.slice(this.maxLine);
    }
    this.partial = rest;
    return done;
  }

  /// The stream ended: a last line without its newline counts too.
  end(): void {
    if (this.partial) this.add(this.partial);
    this.partial = '';
  }

  private add(line: string): void {
    this.lines.push(line);
    this.total++;
    this.size += line.length + 1;
    while (this.lines.length - this.head > this.maxLines || (this.size > this.maxBytes && this.lines.length - this.head > 1)) {
      this.size -= this.lines[this.head].length + 1;
      this.head++;
      this.dropped++;
    }
    // Compact now and then rather than shifting on every drop.
    if (this.head > 1024 && this.head * 2 > this.lines.length) {
      this.lines = this.lines.slice(this.head);
      this.head = 0;
    }
  }

  /// The kept lines, oldest first.
  kept(): string[] {
    return this.head ? this.lines.slice(this.head) : this.lines;
  }

  /// The kept lines as one text (what a download holds): a marker first when lines were dropped.
  text(): string {
    const body = this.kept().join('\n');
    const all = body + (this.kept().length ? '\n' : '') + (this.partial ? this.partial : '');
    return this.dropped ? `${droppedText(this.dropped)}\n${all}` : all;
  }

  clear(): void {
    this.lines = [];
    this.head = 0;
    this.size = 0;
    this.partial = '';
    this.dropped = 0;
    this.total = 0;
  }
}

export function droppedText(n: number): string {
  return `[podgate: ${n} earlier line${n === 1 ? '' : 's'} dropped, only the last ${MAX_LINES} lines / 5 MB are kept]`;
}

/// Where `needle` occurs in `line` (case-insensitive), as [start, end) ranges.
export function matchRanges(line: string, needle: string): [number, number][] {
  if (!needle) return [];
  const hay = line.toLowerCase();
  const n = needle.toLowerCase();
  const out: [number, number][] = [];
  for (let i = hay.indexOf(n); i >= 0; i = hay.indexOf(n, i + n.length)) out.push([i, i + n.length]);
  return out;
}

/// The next match index after `current` (wrapping), forward or back, of `count` matches.
export function stepMatch(current: number, count: number, forward: boolean): number {
  if (count <= 0) return -1;
  if (current < 0) return forward ? 0 : count - 1;
  return (current + (forward ? 1 : -1) + count) % count;
}

/// What an error answer says: a Kubernetes Status's message, else the body, else the code.
export function errorText(code: number, body: string): string {
  try {
    const v = JSON.parse(body) as { kind?: string; message?: string };
    if (v && typeof v.message === 'string' && v.message) return v.message;
  } catch {
    // not JSON
  }
  const t = body.trim();
  return t ? `${code}: ${t.slice(0, 500)}` : `the log request failed (${code})`;
}

/// A file name for a downloaded log.
export function logFileName(pod: string, container: string | undefined, previous: boolean): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_');
  return `${safe(pod)}${container ? '_' + safe(container) : ''}${previous ? '_previous' : ''}.log`;
}
