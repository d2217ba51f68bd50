// The replay's timeline: which events a position in time covers, what a seek must do, and the
// terminal operations a run of events becomes. Pure (the replay view drives a terminal and a
// clock with it).

import { parseSize, type CastEvent } from './asciicast';

/// The speeds the replay offers.
export const SPEEDS = [1, 2, 4, 8, 16] as const;

/// How many events happen at or before `t` (seconds): the index of the first one after it.
/// `events` are in time order.
export function countAt(events: readonly CastEvent[], t: number): number {
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (events[mid].time <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/// What a seek from `applied` events to the position that covers `target` events does: going
/// forward applies the events in between; going back resets the terminal and applies all
/// events up to the target again (a terminal cannot be run backwards).
export interface SeekPlan {
  reset: boolean;
  from: number;
  to: number;
}

export function seekPlan(applied: number, target: number): SeekPlan {
  return target >= applied ? { reset: false, from: applied, to: target } : { reset: true, from: 0, to: target };
}

/// What the terminal does for a run of events: output merged into as few writes as possible,
/// resizes in their place. Input and markers change nothing on the screen.
export type TermOp = { write: string } | { resize: { cols: number; rows: number } };

export function termOps(events: readonly CastEvent[], from: number, to: number): TermOp[] {
  const ops: TermOp[] = [];
  let text = '';
  for (let i = Math.max(0, from); i < Math.min(to, events.length); i++) {
    const e = events[i];
    if (e.code === 'o') {
      text += e.data;
    } else if (e.code === 'r') {
      const size = parseSize(e.data);
      if (!size) continue;
      if (text) ops.push({ write: text });
      text = '';
      ops.push({ resize: size });
    }
  }
  if (text) ops.push({ write: text });
  return ops;
}

/// A clock for the position in the recording, in seconds: it runs at `speed` while playing.
/// `now` is in milliseconds (performance.now() in the page, a counter in tests).
export class Clock {
  private base = 0;
  private since: number | null = null;
  speed = 1;

  /// The position at `now`.
  at(now: number): number {
    return this.since === null ? this.base : this.base + ((now - this.since) / 1000) * this.speed;
  }

  get playing(): boolean {
    return this.since !== null;
  }

  play(now: number): void {
    if (this.since === null) this.since = now;
  }

  pause(now: number): void {
    this.base = this.at(now);
    this.since = null;
  }

  /// Moves to `position`, running on from there if it was running.
  set(position: number, now: number): void {
    this.base = Math.max(0, position);
    if (this.since !== null) this.since = now;
  }

  setSpeed(speed: number, now: number): void {
    this.base = this.at(now);
    if (this.since !== null) this.since = now;
    this.speed = speed;
  }
}

/// `m:ss` (or `h:mm:ss`) of a position in seconds.
export function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh > 0 ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}
