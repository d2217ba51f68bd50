// The asciicast v2 format (asciinema's), as podgate records sessions: a JSON header line, then
// one JSON array per event, `[seconds, code, data]`. Pure: the observe and replay views feed
// what this parses into a terminal. Output data are JSON strings (podgate decoded the bytes as
// UTF-8 when it recorded them, a character split across frames included), so they go to the
// terminal as strings.

/// podgate's own fields in the header (under `podgate`).
export interface CastMeta {
  recording_id?: string;
  session_id?: string;
  cluster?: string;
  namespace?: string;
  pod?: string;
  container?: string;
  user?: string;
  groups?: string[];
  client?: string;
  command?: string[];
  tty?: boolean;
  input?: boolean;
  replica?: string;
}

export interface CastHeader {
  version: 2;
  width: number;
  height: number;
  /// Unix seconds of the start, when the file says.
  timestamp?: number;
  command?: string;
  title?: string;
  podgate?: CastMeta;
}

/// `o` output, `i` input, `r` resize (`COLSxROWS`), `m` marker; other codes are kept and ignored.
export interface CastEvent {
  time: number;
  code: string;
  data: string;
}

/// The largest terminal a recording may ask for; beyond it a size is not believed.
export const MAX_COLS = 1000;
export const MAX_ROWS = 500;

function isSize(n: unknown, max: number): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= max;
}

/// The header line, or why it is not one.
export function parseHeader(line: string): CastHeader | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return 'the first line is not JSON';
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'the first line is not an asciicast header';
  const o = v as Record<string, unknown>;
  if (o.version !== 2) return `asciicast version ${JSON.stringify(o.version)} is not supported (only 2)`;
  if (!isSize(o.width, MAX_COLS) || !isSize(o.height, MAX_ROWS)) return 'the header has no usable width and height';
  const meta = o.podgate !== null && typeof o.podgate === 'object' && !Array.isArray(o.podgate) ? (o.podgate as CastMeta) : undefined;
  return {
    version: 2,
    width: o.width,
    height: o.height,
    timestamp: typeof o.timestamp === 'number' ? o.timestamp : undefined,
    command: typeof o.command === 'string' ? o.command : undefined,
    title: typeof o.title === 'string' ? o.title : undefined,
    podgate: meta,
  };
}

/// One event line, or null when it is not one (a blank line, a broken one).
export function parseEvent(line: string): CastEvent | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (!Array.isArray(v) || v.length < 3) return null;
  const [time, code, data] = v as unknown[];
  if (typeof time !== 'number' || !Number.isFinite(time) || time < 0) return null;
  if (typeof code !== 'string' || typeof data !== 'string') return null;
  return { time, code, data };
}

/// A whole file.
export interface Cast {
  header: CastHeader;
  events: CastEvent[];
  /// Lines after the header that are not events (skipped).
  skipped: number;
}

/// A whole `.cast` file, or why it is not one. Events stay in file order; a time that goes
/// backwards is raised to the one before it, so the timeline only moves forward.
export function parseCast(text: string): Cast | string {
  const lines = text.split('\n');
  const first = lines.findIndex((l) => l.trim() !== '');
  if (first < 0) return 'the recording is empty';
  const header = parseHeader(lines[first]);
  if (typeof header === 'string') return header;
  const events: CastEvent[] = [];
  let skipped = 0;
  let last = 0;
  for (const line of lines.slice(first + 1)) {
    if (line.trim() === '') continue;
    const e = parseEvent(line);
    if (!e) {
      skipped++;
      continue;
    }
    if (e.time < last) e.time = last;
    last = e.time;
    events.push(e);
  }
  return { header, events, skipped };
}

/// `COLSxROWS` of a resize event, or null when it is not a believable size.
export function parseSize(data: string): { cols: number; rows: number } | null {
  const m = /^(\d{1,4})x(\d{1,4})$/.exec(data.trim());
  if (!m) return null;
  const cols = Number(m[1]);
  const rows = Number(m[2]);
  return isSize(cols, MAX_COLS) && isSize(rows, MAX_ROWS) ? { cols, rows } : null;
}

/// The end podgate writes last: `end: OUTCOME[, exit code N][: MESSAGE]`; null for any other marker.
export function endOf(marker: string): { outcome: string; exitCode: number | null; message: string } | null {
  const m = /^end: ([a-z_]+)(?:, exit code (-?\d+))?(?:: ([\s\S]*))?$/.exec(marker);
  if (!m) return null;
  return { outcome: m[1], exitCode: m[2] !== undefined ? Number(m[2]) : null, message: m[3] ?? '' };
}

/// Markers that only say which stream follows (sessions without a terminal): not worth listing.
export function isStreamMarker(data: string): boolean {
  return data === 'stdout' || data === 'stderr';
}
