// Resume after a dropped connection (`podgate.resume.v1`, docs/protocol.md): the pure parts a
// terminal tab uses, without the DOM, with the clock and the randomness passed in so that the
// unit tests (tests/resume.test.ts) drive them.
//
// - control messages on channel 128: `hello`, `resumed`, `refused`, `heartbeat`, `notice` in,
//   `ack` out;
// - the output offset (stdout and stderr payload bytes, from 0 at the session's start) and when
//   to acknowledge it (after every 64 KiB rendered, and on each heartbeat);
// - a dead link: nothing received for 2 × heartbeat_seconds + 2 s;
// - the reconnect schedule: 250 ms doubling to 5 s, ±30 % jitter, given up at the end of the
//   window counted from the drop;
// - input typed while disconnected: up to 4 KiB kept and sent after the resume, the rest refused;
// - the subprotocols and the path of a resume.

import { SUBPROTOCOL, frame } from './protocol';

/// The channel id of podgate's control messages (one Kubernetes does not use).
export const CONTROL = 128;
/// The subprotocol entry a client offers to opt in.
export const RESUME_PROTOCOL = 'podgate.resume.v1';
/// Acknowledge at least this often (in output bytes rendered).
export const ACK_EVERY_BYTES = 64 * 1024;
/// Input typed while disconnected that is kept for after the resume.
export const INPUT_QUEUE_BYTES = 4 * 1024;
/// The reconnect schedule.
export const BACKOFF_FIRST_MS = 250;
export const BACKOFF_MAX_MS = 5_000;
export const BACKOFF_JITTER = 0.3;

/// The timer functions and the clock the parts here use (the window's, or a test's fake).
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/// What `hello` tells about a new resumable session.
export interface Hello {
  session: string;
  credential: string;
  windowSeconds: number;
  heartbeatSeconds: number;
  bufferBytes: number;
}

/// A control message from podgate, decoded; `other` for a `type` this UI does not know (ignored).
export type ControlIn =
  | ({ type: 'hello' } & Hello)
  | { type: 'resumed'; session: string; offset: number; gap: number }
  | { type: 'refused'; reason: string; message: string }
  | { type: 'heartbeat'; offset: number }
  | { type: 'notice'; text: string }
  | { type: 'other'; name: string };

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/// A credential as podgate makes them: base64url (a subprotocol entry may carry it as is).
const CREDENTIAL = /^[A-Za-z0-9_-]{16,128}$/;

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/// Decodes a control frame's payload (the bytes after the channel byte). Null for what is not
/// a JSON object with a `type`, or a known `type` without the fields it needs: the frame is
/// then ignored, as unknown ones are.
export function decodeControl(payload: Uint8Array): ControlIn | null {
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(payload));
  } catch {
    return null;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
  const m = v as Record<string, unknown>;
  if (typeof m.type !== 'string') return null;
  switch (m.type) {
    case 'hello': {
      const { session, credential, window_seconds: w, heartbeat_seconds: hb, buffer_bytes: buf } = m;
      if (typeof session !== 'string' || !session || typeof credential !== 'string' || !CREDENTIAL.test(credential)) return null;
      if (typeof w !== 'number' || !(w > 0) || typeof hb !== 'number' || !(hb > 0)) return null;
      return {
        type: 'hello', session, credential, windowSeconds: w, heartbeatSeconds: hb,
        bufferBytes: isCount(buf) ? buf : 0,
      };
    }
    case 'resumed': {
      const gap = m.gap === undefined ? 0 : m.gap;
      if (!isCount(m.offset) || !isCount(gap)) return null;
      return { type: 'resumed', session: str(m.session), offset: m.offset, gap };
    }
    case 'refused':
      return { type: 'refused', reason: str(m.reason), message: str(m.message) };
    case 'heartbeat':
      return { type: 'heartbeat', offset: isCount(m.offset) ? m.offset : 0 };
    case 'notice':
      return typeof m.text === 'string' ? { type: 'notice', text: m.text } : null;
    default:
      return { type: 'other', name: m.type };
  }
}

/// How often to acknowledge for a session whose buffer holds `bufferBytes`: every 64 KiB, or
/// every quarter of a smaller buffer (a buffer that fills before an ack would stall the
/// program until the next heartbeat when podgate applies backpressure).
export function ackInterval(bufferBytes: number): number {
  if (!(bufferBytes > 0)) return ACK_EVERY_BYTES;
  return Math.min(ACK_EVERY_BYTES, Math.max(1024, Math.floor(bufferBytes / 4)));
}

/// The frame that acknowledges `offset` output bytes rendered.
export function ackFrame(offset: number): Uint8Array {
  return controlFrame({ type: 'ack', offset });
}

export function controlFrame(message: object): Uint8Array {
  return frame(CONTROL, encoder.encode(JSON.stringify(message)));
}

/// What a new session offers: v5, and the opt-in.
export const NEW_SESSION_PROTOCOLS = [SUBPROTOCOL, RESUME_PROTOCOL];

/// What a resume offers: v5, the opt-in, the credential and the offset rendered.
export function resumeProtocols(credential: string, offset: number): string[] {
  return [SUBPROTOCOL, RESUME_PROTOCOL, `resume.podgate.io.${credential}`, `offset.podgate.io.${offset}`];
}

/// Where a resume goes (on the page's own host; credential and offset never in the URL).
export function resumePath(session: string): string {
  return `/podgate/sessions/${encodeURIComponent(session)}/resume`;
}

/// The output offset: what was handed to the terminal (`received`, where a resume continues:
/// the terminal renders what it was given even after the connection is gone), what it has
/// processed (`rendered`, what is acknowledged: it frees podgate's buffer at the pace the
/// terminal keeps up with), and when to acknowledge.
export class Offsets {
  received = 0;
  rendered = 0;
  acked = 0;

  constructor(public ackEvery: number = ACK_EVERY_BYTES) {}

  /// `n` output bytes arrived and go to the terminal; returns the offset after them (to pass
  /// to [`rendered`] once the terminal has processed them).
  receive(n: number): number {
    this.received += n;
    return this.received;
  }

  /// The terminal processed the output up to `at`: the offset to acknowledge now, or null.
  render(at: number): number | null {
    if (at > this.rendered) this.rendered = at;
    if (this.rendered - this.acked < this.ackEvery) return null;
    this.acked = this.rendered;
    return this.rendered;
  }

  /// A heartbeat arrived: acknowledge what was rendered, whatever the amount.
  heartbeat(): number {
    this.acked = Math.max(this.acked, this.rendered);
    return this.rendered;
  }

  /// A resume that asked for `asked` was answered with `offset` and `gap`; returns where the
  /// output continues. The protocol has `offset` as where it continues (`asked + gap`); it is
  /// read so that an `offset` that repeats `asked` continues at the same place.
  resumed(asked: number, offset: number, gap: number): number {
    const at = Math.max(offset, asked + gap);
    this.received = at;
    return at;
  }
}

/// Tells when a link is dead: nothing received for `2 × heartbeat + 2 s`. Cheap per frame (a
/// time stamp); one timer, set again only when it fires early.
///
/// A check that runs much later than it was set for (the clock jumped, the machine slept, the
/// page was frozen) does not trust the silence it measures: frames may be waiting to be
/// delivered. It gives the link one heartbeat more (`heartbeat + 2 s`) before calling it dead,
/// so a healthy connection is never given up on because of a jump (giving it up could lose
/// the session, e.g. when the login it would need to resume is gone meanwhile).
export class LinkWatch {
  private last = 0;
  private timer: unknown = null;
  private limitMs = 0;
  private graceMs = 0;
  /// When the timer set last should fire.
  private due = 0;

  constructor(private readonly clock: Clock, private readonly onDead: () => void) {}

  static limitFor(heartbeatSeconds: number): number {
    return 2 * heartbeatSeconds * 1000 + 2000;
  }

  /// How late a check may run and still be believed.
  static readonly LATE_MS = 1000;

  get running(): boolean {
    return this.timer !== null;
  }

  /// Starts (or restarts) watching, counting from now.
  start(heartbeatSeconds: number): void {
    this.stop();
    this.limitMs = LinkWatch.limitFor(heartbeatSeconds);
    this.graceMs = heartbeatSeconds * 1000 + 2000;
    this.last = this.clock.now();
    this.arm(this.limitMs);
  }

  /// Something arrived.
  heard(): void {
    this.last = this.clock.now();
  }

  stop(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(ms: number): void {
    this.due = this.clock.now() + ms;
    this.timer = this.clock.setTimeout(() => this.check(), ms);
  }

  private check(): void {
    this.timer = null;
    const now = this.clock.now();
    if (now - this.due > LinkWatch.LATE_MS) {
      // Late: measure the silence from one grace period before now at the most.
      this.last = Math.max(this.last, now - (this.limitMs - this.graceMs));
    }
    const quiet = now - this.last;
    if (quiet >= this.limitMs) {
      this.onDead();
      return;
    }
    this.arm(this.limitMs - quiet);
  }
}

/// The waits between reconnect attempts: 250 ms doubling to 5 s, each ±30 % at random, none
/// past the end of the window (`deadline`, counted from the drop).
export class Backoff {
  attempts = 0;

  constructor(
    private readonly random: () => number,
    readonly firstMs: number = BACKOFF_FIRST_MS,
    readonly maxMs: number = BACKOFF_MAX_MS,
    readonly jitter: number = BACKOFF_JITTER,
  ) {}

  /// The wait before the next attempt at `now`; null when the window is over.
  next(now: number, deadline: number): number | null {
    if (now >= deadline) return null;
    const base = Math.min(this.maxMs, this.firstMs * 2 ** Math.min(this.attempts, 30));
    this.attempts++;
    const r = Math.min(1, Math.max(0, this.random()));
    const wait = Math.round(base * (1 + this.jitter * (2 * r - 1)));
    return Math.max(0, Math.min(wait, deadline - now));
  }

  reset(): void {
    this.attempts = 0;
  }
}

/// Input typed while disconnected: frames kept, up to `limit` payload bytes in all, to send
/// after the resume; what does not fit is refused whole (the caller tells the person).
export class InputQueue {
  private frames: Uint8Array[] = [];
  bytes = 0;
  /// Payload bytes refused since the last [`take`].
  refused = 0;

  constructor(readonly limit: number = INPUT_QUEUE_BYTES) {}

  /// Keeps `frames` (stdin frames: a stream byte, then the payload) if they fit in full.
  push(frames: Uint8Array[]): boolean {
    const n = frames.reduce((sum, f) => sum + Math.max(0, f.length - 1), 0);
    if (this.bytes + n > this.limit) {
      this.refused += n;
      return false;
    }
    this.frames.push(...frames);
    this.bytes += n;
    return true;
  }

  /// Everything kept, in order, and empties the queue.
  take(): Uint8Array[] {
    const out = this.frames;
    this.frames = [];
    this.bytes = 0;
    this.refused = 0;
    return out;
  }
}

/// Close codes that say the connection went away rather than that the session ended: 1006
/// (gone without a close frame: a reset, a network change), and the codes a proxy or a load
/// balancer between the page and podgate closes with when it goes away or restarts (1001,
/// 1012, 1014). podgate ends a session with an exit status or its own `Status` first, so a
/// close without one of these, after a `hello`, is worth a resume: if the session is gone,
/// podgate refuses it and the tab says so.
const DROP_CODES = new Set([1001, 1006, 1012, 1014]);

/// Whether a resumable session's connection that closed with `code`, after `status` (an exit
/// status or podgate's `Status` on stream 3, if any), dropped rather than ended.
export function isDrop(code: number, hadStatus: boolean): boolean {
  return !hadStatus && DROP_CODES.has(code);
}

/// Whole seconds left until `deadline` (rounded up: "1s left" until it is over).
export function secondsLeft(deadline: number, now: number): number {
  return Math.max(0, Math.ceil((deadline - now) / 1000));
}

/// The banner while reconnecting.
export function reconnectingText(deadline: number, now: number): string {
  return `reconnecting… (${secondsLeft(deadline, now)}s left)`;
}

/// The line written when a resume skipped output.
export function gapText(gap: number): string {
  const n = gap.toLocaleString('en-US');
  return `[podgate: ${n} ${gap === 1 ? 'byte' : 'bytes'} of output skipped while disconnected (podgate's buffer was full); the screen is redrawn]`;
}

/// A window in words ("2m", "90s", "1m 30s").
export function windowText(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return s % 60 ? `${m}m ${s % 60}s` : `${m}m`;
}

/// The detail of a refused resume, from its reason (the message podgate wrote comes first).
export function refusedDetail(reason: string, message: string): string {
  if (message) return message;
  switch (reason) {
    case 'unknown_session':
      return 'podgate does not hold this session (it ended, or this is another replica).';
    case 'expired':
      return 'The session waited for this page longer than its resume window and has ended.';
    case 'forbidden':
      return 'The session belongs to someone else.';
    case 'bad_credential':
      return 'podgate did not accept the resume credential.';
    default:
      return `podgate refused the resume (${reason || 'no reason given'}).`;
  }
}
