// Unit tests of resume's pure parts (src/resume.ts): control messages on channel 128, the
// output offset and its acknowledgements, dead-link detection, the reconnect schedule, the
// input queue and the subprotocols of a resume; run by node's test runner after
// tests/unit.mjs bundles them. Time is a fake clock the tests move on.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ACK_EVERY_BYTES, Backoff, CONTROL, INPUT_QUEUE_BYTES, InputQueue, LinkWatch, NEW_SESSION_PROTOCOLS, Offsets,
  RESUME_PROTOCOL, ackFrame, ackInterval, isDrop, decodeControl, gapText, reconnectingText, refusedDetail, resumePath, resumeProtocols,
  secondsLeft, windowText, type Clock,
} from '../src/resume';
import { stdinFrame } from '../src/protocol';

const enc = new TextEncoder();
const json = (v: unknown) => enc.encode(JSON.stringify(v));
const CRED = 'q2Vw4t3xJ0mX8d1cQnB9fLr5Ua7KzYhEoPiGsTwCvAk'; // 43 base64url characters

/// A fake clock: timers fire only when the test moves time on.
class FakeClock implements Clock {
  t = 0;
  private next = 1;
  readonly pending = new Map<number, { at: number; fn: () => void }>();
  now = (): number => this.t;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = this.next++;
    this.pending.set(id, { at: this.t + ms, fn });
    return id;
  };
  clearTimeout = (handle: unknown): void => {
    this.pending.delete(handle as number);
  };
  /// Moves time on by `ms`, firing what falls due, in order.
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.pending.entries()].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.pending.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
    }
    this.t = end;
  }
  /// The clock jumps `ms` at once (a sleep, a fast-forward): what fell due fires late, now.
  jump(ms: number): void {
    this.t += ms;
    for (const [id, x] of [...this.pending.entries()].sort((a, b) => a[1].at - b[1].at)) {
      if (x.at > this.t || !this.pending.has(id)) continue;
      this.pending.delete(id);
      x.fn();
    }
  }
}

// --- control messages ----------------------------------------------------------------------

test('hello, resumed, refused, heartbeat and notice decode; the rest is ignored', () => {
  assert.deepEqual(decodeControl(json({
    type: 'hello', session: 's-1', credential: CRED, window_seconds: 120, heartbeat_seconds: 5, buffer_bytes: 262144,
  })), { type: 'hello', session: 's-1', credential: CRED, windowSeconds: 120, heartbeatSeconds: 5, bufferBytes: 262144 });
  assert.deepEqual(decodeControl(json({ type: 'resumed', session: 's-1', offset: 1000, gap: 24, credential: CRED })),
    { type: 'resumed', session: 's-1', offset: 1000, gap: 24 });
  assert.deepEqual(decodeControl(json({ type: 'resumed', session: 's-1', offset: 7 })),
    { type: 'resumed', session: 's-1', offset: 7, gap: 0 }, 'gap defaults to 0');
  assert.deepEqual(decodeControl(json({ type: 'refused', reason: 'forbidden', message: 'not yours' })),
    { type: 'refused', reason: 'forbidden', message: 'not yours' });
  assert.deepEqual(decodeControl(json({ type: 'refused' })), { type: 'refused', reason: '', message: '' });
  assert.deepEqual(decodeControl(json({ type: 'heartbeat', offset: 99, extra: true })), { type: 'heartbeat', offset: 99 });
  assert.deepEqual(decodeControl(json({ type: 'notice', text: 'hi' })), { type: 'notice', text: 'hi' });
  // Unknown types (a newer podgate's) are told apart from garbage.
  assert.deepEqual(decodeControl(json({ type: 'later', x: 1 })), { type: 'other', name: 'later' });
  for (const bad of ['not json', '[1,2]', 'null', '"hello"', '{"no":"type"}', '{"type":3}']) {
    assert.equal(decodeControl(enc.encode(bad)), null, bad);
  }
  assert.equal(decodeControl(new Uint8Array([0xff, 0xfe])), null);
});

test('a hello or resumed without what it needs is ignored', () => {
  const hello = { type: 'hello', session: 's', credential: CRED, window_seconds: 120, heartbeat_seconds: 5 };
  assert.equal(decodeControl(json({ ...hello, credential: 'short' })), null);
  assert.equal(decodeControl(json({ ...hello, credential: `${CRED.slice(0, 40)}a b` })), null, 'not a subprotocol token');
  assert.equal(decodeControl(json({ ...hello, credential: `${CRED.slice(0, 40)},x,` })), null);
  assert.equal(decodeControl(json({ ...hello, session: '' })), null);
  assert.equal(decodeControl(json({ ...hello, window_seconds: 0 })), null);
  assert.equal(decodeControl(json({ ...hello, heartbeat_seconds: 'x' })), null);
  assert.equal(decodeControl(json({ type: 'resumed', offset: -1 })), null);
  assert.equal(decodeControl(json({ type: 'resumed', offset: 1.5 })), null);
  assert.equal(decodeControl(json({ type: 'resumed', offset: 1, gap: -3 })), null);
  assert.equal(decodeControl(json({ type: 'notice' })), null);
});

test('an ack is channel 128 with the offset as JSON', () => {
  const f = ackFrame(65536);
  assert.equal(f[0], CONTROL);
  assert.equal(CONTROL, 128);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(f.subarray(1))), { type: 'ack', offset: 65536 });
});

test('subprotocols: a new session opts in, a resume presents credential and offset; never in the URL', () => {
  assert.deepEqual(NEW_SESSION_PROTOCOLS, ['v5.channel.k8s.io', 'podgate.resume.v1']);
  assert.equal(RESUME_PROTOCOL, 'podgate.resume.v1');
  assert.deepEqual(resumeProtocols(CRED, 12345), [
    'v5.channel.k8s.io', 'podgate.resume.v1', `resume.podgate.io.${CRED}`, 'offset.podgate.io.12345',
  ]);
  assert.equal(resumePath('abc-123'), '/podgate/sessions/abc-123/resume');
  assert.equal(resumePath('a/b?c'), '/podgate/sessions/a%2Fb%3Fc/resume');
  assert.ok(!resumePath('abc').includes(CRED));
});

// --- offsets and acks ----------------------------------------------------------------------

test('the offset counts output handed to the terminal; acks follow what it rendered, every 64 KiB', () => {
  const o = new Offsets();
  assert.equal(ACK_EVERY_BYTES, 64 * 1024);
  const at1 = o.receive(40_000);
  const at2 = o.receive(40_000);
  assert.equal(at2, 80_000);
  assert.equal(o.received, 80_000);
  // Nothing rendered yet: nothing to acknowledge, and a resume would still ask from 80000
  // (the terminal renders what it was given).
  assert.equal(o.render(at1), null, 'under 64 KiB rendered');
  assert.equal(o.render(at2), 80_000, 'past 64 KiB: ack');
  assert.equal(o.acked, 80_000);
  assert.equal(o.render(o.receive(65_535)), null);
  assert.equal(o.render(o.receive(1)), 80_000 + 65_536);
  // Callbacks that come late (out of order) never move the rendered offset back.
  o.render(10);
  assert.equal(o.rendered, 80_000 + 65_536);
});

test('a buffer under 256 KiB is acknowledged every quarter of it, never less than 1 KiB', () => {
  assert.equal(ackInterval(256 * 1024), 64 * 1024);
  assert.equal(ackInterval(1 << 30), 64 * 1024);
  assert.equal(ackInterval(16 * 1024), 4 * 1024);
  assert.equal(ackInterval(1000), 1024);
  assert.equal(ackInterval(0), 64 * 1024, 'not told: the protocol\'s 64 KiB');
  const o = new Offsets(ackInterval(16 * 1024));
  assert.equal(o.render(o.receive(4095)), null);
  assert.equal(o.render(o.receive(1)), 4096);
});

test('every heartbeat acknowledges what was rendered, however little', () => {
  const o = new Offsets();
  o.render(o.receive(10));
  assert.equal(o.heartbeat(), 10);
  assert.equal(o.heartbeat(), 10);
  o.receive(5); // not rendered yet
  assert.equal(o.heartbeat(), 10);
  // The next ack is 64 KiB after the last one, whatever acknowledged it.
  assert.equal(o.render(o.receive(ACK_EVERY_BYTES - 6)), null, '5 + 65530 bytes past the ack of 10');
  assert.equal(o.render(o.receive(1)), 10 + ACK_EVERY_BYTES);
});

test('a resume continues where podgate says, a gap skipping ahead', () => {
  const o = new Offsets();
  o.receive(1000);
  assert.equal(o.resumed(1000, 1000, 0), 1000);
  assert.equal(o.received, 1000);
  // `offset` is where output continues: asked + gap.
  assert.equal(o.resumed(1000, 1500, 500), 1500);
  assert.equal(o.received, 1500);
  // Read either way, it continues at the same byte.
  const p = new Offsets();
  p.receive(1000);
  assert.equal(p.resumed(1000, 1000, 500), 1500);
  assert.equal(p.receive(10), 1510);
});

// --- dead links ----------------------------------------------------------------------------

test('a link is dead after 2 × heartbeat + 2 s of silence, not before', () => {
  const clock = new FakeClock();
  let dead = 0;
  const w = new LinkWatch(clock, () => dead++);
  assert.equal(LinkWatch.limitFor(5), 12_000);
  w.start(5);
  clock.advance(11_999);
  assert.equal(dead, 0);
  clock.advance(1);
  assert.equal(dead, 1);
  assert.equal(w.running, false, 'fires once');
  clock.advance(60_000);
  assert.equal(dead, 1);
});

test('anything heard pushes the deadline on; one timer, however many frames', () => {
  const clock = new FakeClock();
  let dead = 0;
  const w = new LinkWatch(clock, () => dead++);
  w.start(2); // 6 s
  for (let i = 0; i < 100; i++) {
    clock.advance(50);
    w.heard();
  }
  assert.equal(clock.pending.size, 1, 'frames set no timers');
  clock.advance(5_999);
  assert.equal(dead, 0, `dead ${clock.t} ms in, heard at 5000`);
  clock.advance(1);
  assert.equal(dead, 1);
  // Stopped: nothing fires; started again: counts from then.
  w.start(2);
  w.stop();
  clock.advance(60_000);
  assert.equal(dead, 1);
  w.start(2);
  clock.advance(6_000);
  assert.equal(dead, 2);
});

test('a check that runs late (a clock jump, a sleep) gives the link one heartbeat more', () => {
  const clock = new FakeClock();
  let dead = 0;
  const w = new LinkWatch(clock, () => dead++);
  w.start(5); // 12 s; a heartbeat every 5 s
  // The clock jumps 31 s at once: the timer runs 19 s late.
  clock.jump(31_000);
  assert.equal(dead, 0, 'not dead at once after a jump');
  // A live link's next heartbeat arrives within the grace (5 s + 2 s).
  clock.advance(4_000);
  w.heard();
  clock.advance(11_999);
  assert.equal(dead, 0);
  clock.advance(1);
  assert.equal(dead, 1, 'silence after the heartbeat counts as usual');
  // A link that stays silent after a jump is dead when the grace ends.
  w.start(5);
  clock.jump(60_000);
  assert.equal(dead, 1);
  clock.advance(6_999);
  assert.equal(dead, 1);
  clock.advance(1);
  assert.equal(dead, 2);
});

// --- the reconnect schedule ----------------------------------------------------------------

test('backoff: 250 ms doubling to 5 s, within ±30 % jitter', () => {
  const mid = new Backoff(() => 0.5);
  const waits = Array.from({ length: 8 }, () => mid.next(0, 1e9));
  assert.deepEqual(waits, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
  const low = new Backoff(() => 0);
  const high = new Backoff(() => 1);
  assert.deepEqual([low.next(0, 1e9), low.next(0, 1e9), low.next(0, 1e9)], [175, 350, 700]);
  assert.deepEqual([high.next(0, 1e9), high.next(0, 1e9), high.next(0, 1e9)], [325, 650, 1300]);
  for (let i = 0; i < 10; i++) high.next(0, 1e9);
  assert.equal(high.next(0, 1e9), 6500, 'the cap, plus 30 %');
  // Real randomness stays inside the band.
  const real = new Backoff(Math.random);
  for (let i = 0; i < 200; i++) {
    const base = Math.min(5000, 250 * 2 ** Math.min(i, 30));
    const w = real.next(0, 1e12) ?? -1;
    assert.ok(w >= Math.floor(base * 0.7) && w <= Math.ceil(base * 1.3), `attempt ${i}: ${w} ms`);
  }
  mid.reset();
  assert.equal(mid.next(0, 1e9), 250, 'a reset starts over');
});

test('backoff gives up at the end of the window, counted from the drop, and never waits past it', () => {
  const clock = new FakeClock();
  const b = new Backoff(() => 0.5);
  const dropAt = clock.now();
  const deadline = dropAt + 3_000; // a 3 s window
  const attempts: number[] = [];
  for (;;) {
    const w = b.next(clock.now(), deadline);
    if (w === null) break;
    clock.advance(w);
    attempts.push(clock.now());
  }
  // 250, 750, 1750, then the wait is cut to the deadline: one last try at 3000.
  assert.deepEqual(attempts, [250, 750, 1750, 3000]);
  assert.equal(b.next(clock.now(), deadline), null);
  assert.equal(new Backoff(() => 0.5).next(5_000, 5_000), null);
});

// --- input while disconnected --------------------------------------------------------------

test('input while disconnected: 4 KiB kept in order, the rest refused whole', () => {
  const q = new InputQueue();
  assert.equal(INPUT_QUEUE_BYTES, 4096);
  assert.ok(q.push([stdinFrame('echo hi\r')]));
  assert.ok(q.push([stdinFrame('x'.repeat(4000))]));
  assert.equal(q.bytes, 4008);
  assert.equal(q.push([stdinFrame('y'.repeat(100))]), false, 'over 4 KiB');
  assert.equal(q.refused, 100);
  assert.ok(q.push([stdinFrame('z'.repeat(88))]), 'what still fits is kept');
  assert.equal(q.bytes, 4096);
  assert.equal(q.push([stdinFrame('!')]), false);
  const out = q.take();
  assert.deepEqual(out.map((f) => new TextDecoder().decode(f.subarray(1))), ['echo hi\r', 'x'.repeat(4000), 'z'.repeat(88)]);
  assert.ok(out.every((f) => f[0] === 0), 'stdin frames');
  assert.equal(q.bytes, 0);
  assert.equal(q.refused, 0);
  assert.deepEqual(q.take(), []);
  // A paste in several frames goes whole or not at all.
  const big = new InputQueue(10);
  assert.equal(big.push([stdinFrame('123456'), stdinFrame('789012')]), false);
  assert.equal(big.bytes, 0);
});

// --- drops and endings --------------------------------------------------------------------

test('a close without a status is a drop when the connection went away, not when podgate ended it', () => {
  assert.equal(isDrop(1006, false), true, 'no close frame: a reset, a network change');
  assert.equal(isDrop(1001, false), true, 'a proxy going away');
  assert.equal(isDrop(1012, false), true);
  assert.equal(isDrop(1014, false), true);
  assert.equal(isDrop(1006, true), false, 'an exit status was read: the session ended');
  assert.equal(isDrop(1001, true), false);
  assert.equal(isDrop(1000, false), false, 'a normal close (a takeover by another connection too)');
  assert.equal(isDrop(1008, false), false);
  assert.equal(isDrop(1011, false), false);
});

// --- words ---------------------------------------------------------------------------------

test('the banner counts down whole seconds to the end of the window', () => {
  assert.equal(reconnectingText(120_000, 0), 'reconnecting… (120s left)');
  assert.equal(reconnectingText(120_000, 119_001), 'reconnecting… (1s left)');
  assert.equal(reconnectingText(120_000, 120_000), 'reconnecting… (0s left)');
  assert.equal(secondsLeft(1000, 5000), 0);
  assert.equal(windowText(120), '2m');
  assert.equal(windowText(90), '1m 30s');
  assert.equal(windowText(3), '3s');
});

test('a gap says how many bytes were skipped; refusals say why', () => {
  assert.match(gapText(123456), /123,456 bytes of output skipped/);
  assert.match(gapText(1), /1 byte of output skipped/);
  assert.equal(refusedDetail('expired', 'podgate: waited too long'), 'podgate: waited too long');
  for (const r of ['unknown_session', 'forbidden', 'bad_credential', 'expired', 'bad_request', '']) {
    assert.ok(refusedDetail(r, '').length > 10, r);
  }
});
