// Unit tests of the pure parts behind the sessions, observe, recordings and replay pages:
// asciicast lines, the replay's timeline and seeks, the pages' URLs. Run by tests/unit.mjs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endOf, isStreamMarker, parseCast, parseEvent, parseHeader, parseSize } from '../src/asciicast';
import { Clock, clock, countAt, seekPlan, termOps } from '../src/timeline';
import * as views from '../src/views';
import { bytes, clientText, terminatePath, type LiveSession } from '../src/sessions';
import { localToRfc3339, outcomeText, rfc3339ToLocal, type RecordingEntry } from '../src/recordings';

const HEADER = JSON.stringify({
  version: 2, width: 120, height: 40, timestamp: 1796083200, command: 'sh', title: 'zoë@east/default/shell-0', env: {},
  podgate: { recording_id: '20261201.east.abc', session_id: 'abc', cluster: 'east', namespace: 'default', pod: 'shell-0', user: 'zoë', tty: true },
});

test('an asciicast header is read, with podgate\'s fields', () => {
  const h = parseHeader(HEADER);
  assert.equal(typeof h, 'object');
  if (typeof h === 'string') return;
  assert.equal(h.width, 120);
  assert.equal(h.height, 40);
  assert.equal(h.timestamp, 1796083200);
  assert.equal(h.podgate?.user, 'zoë');
  assert.equal(h.podgate?.recording_id, '20261201.east.abc');
  // What is not a v2 header says why.
  assert.match(parseHeader('not json') as string, /not JSON/);
  assert.match(parseHeader('[0.1, "o", "x"]') as string, /header/);
  assert.match(parseHeader('{"version": 1, "width": 80, "height": 24}') as string, /version 1/);
  assert.match(parseHeader('{"version": 2, "width": 0, "height": 24}') as string, /width/);
  assert.match(parseHeader('{"version": 2, "width": 80.5, "height": 24}') as string, /width/);
  assert.match(parseHeader('{"version": 2, "width": 80, "height": 100000}') as string, /width and height/);
});

test('event lines: [time, code, data], strings kept as decoded text', () => {
  assert.deepEqual(parseEvent('[0.5, "o", "caf\\u00e9 \\u20ac \\ud83d\\ude00"]'), { time: 0.5, code: 'o', data: 'café € 😀' });
  assert.deepEqual(parseEvent('[1.25, "r", "100x30"]'), { time: 1.25, code: 'r', data: '100x30' });
  assert.deepEqual(parseEvent('[2, "m", "end: completed, exit code 0"]'), { time: 2, code: 'm', data: 'end: completed, exit code 0' });
  for (const bad of ['', 'x', '{}', '[1, "o"]', '["1", "o", "x"]', '[-1, "o", "x"]', '[1, 2, "x"]', '[1, "o", 3]', '[1e999, "o", "x"]']) {
    assert.equal(parseEvent(bad), null, bad);
  }
});

test('a whole file: blank lines ignored, broken lines skipped and counted, time never goes back', () => {
  const text = [HEADER, '[0.1, "o", "a"]', '', 'garbage', '[0.05, "o", "b"]', '[0.3, "r", "90x20"]', ''].join('\n');
  const c = parseCast(text);
  assert.equal(typeof c, 'object');
  if (typeof c === 'string') return;
  assert.equal(c.skipped, 1);
  assert.deepEqual(c.events.map((e) => [e.time, e.code, e.data]), [[0.1, 'o', 'a'], [0.1, 'o', 'b'], [0.3, 'r', '90x20']]);
  assert.equal(parseCast(''), 'the recording is empty');
  assert.match(parseCast('{"version": 3}') as string, /version 3/);
});

test('sizes, end markers and stream markers', () => {
  assert.deepEqual(parseSize('120x40'), { cols: 120, rows: 40 });
  for (const bad of ['120', '0x10', '10x0', 'axb', '120x40x2', '99999x10', '-1x5']) assert.equal(parseSize(bad), null, bad);
  assert.deepEqual(endOf('end: completed, exit code 0'), { outcome: 'completed', exitCode: 0, message: '' });
  assert.deepEqual(endOf('end: terminated: podgate: session closed by admin: incident #412'),
    { outcome: 'terminated', exitCode: null, message: 'podgate: session closed by admin: incident #412' });
  assert.deepEqual(endOf('end: exit_nonzero, exit code 3'), { outcome: 'exit_nonzero', exitCode: 3, message: '' });
  assert.equal(endOf('podgate: admin started watching this session (read-only)'), null);
  assert.equal(endOf('ending soon'), null);
  assert.ok(isStreamMarker('stderr') && isStreamMarker('stdout') && !isStreamMarker('end: completed'));
});

const ev = (time: number, code: string, data: string) => ({ time, code, data });
const EVENTS = [ev(0, 'o', 'a'), ev(0, 'r', '100x30'), ev(1, 'o', 'b'), ev(1, 'm', 'note'), ev(2.5, 'o', 'c'), ev(2.5, 'o', 'd'), ev(4, 'r', 'bad'), ev(4, 'i', 'typed')];

test('the timeline: how many events a position covers', () => {
  assert.equal(countAt([], 5), 0);
  assert.equal(countAt(EVENTS, -1), 0);
  assert.equal(countAt(EVENTS, 0), 2);
  assert.equal(countAt(EVENTS, 0.99), 2);
  assert.equal(countAt(EVENTS, 1), 4);
  assert.equal(countAt(EVENTS, 2.5), 6);
  assert.equal(countAt(EVENTS, 100), EVENTS.length);
});

test('a seek forward applies what lies between; a seek back starts over', () => {
  assert.deepEqual(seekPlan(2, 6), { reset: false, from: 2, to: 6 });
  assert.deepEqual(seekPlan(6, 6), { reset: false, from: 6, to: 6 });
  assert.deepEqual(seekPlan(6, 2), { reset: true, from: 0, to: 2 });
  assert.deepEqual(seekPlan(6, 0), { reset: true, from: 0, to: 0 });
});

test('terminal operations: output merged, resizes in their place, markers, input and bad sizes ignored', () => {
  assert.deepEqual(termOps(EVENTS, 0, EVENTS.length), [
    { write: 'a' }, { resize: { cols: 100, rows: 30 } }, { write: 'bcd' },
  ]);
  assert.deepEqual(termOps(EVENTS, 2, 4), [{ write: 'b' }]);
  assert.deepEqual(termOps(EVENTS, 4, 100), [{ write: 'cd' }]);
  assert.deepEqual(termOps(EVENTS, 3, 3), []);
  // A character that was split across frames arrives whole in the recording, and stays whole.
  assert.deepEqual(termOps([ev(0, 'o', 'caf'), ev(0.3, 'o', 'é €')], 0, 2), [{ write: 'café €' }]);
});

test('the clock runs at its speed while playing and holds while paused', () => {
  const c = new Clock();
  assert.equal(c.at(1000), 0);
  c.play(1000);
  assert.equal(c.at(3000), 2);
  c.setSpeed(4, 3000);
  assert.equal(c.at(3500), 4);
  c.pause(3500);
  assert.equal(c.at(9000), 4);
  assert.ok(!c.playing);
  c.set(1, 9000);
  assert.equal(c.at(10000), 1);
  c.play(10000);
  c.set(0.5, 10000);
  assert.equal(c.at(10250), 1.5);
  c.set(-3, 10250);
  assert.equal(c.at(10250), 0);
  assert.equal(clock(0), '0:00');
  assert.equal(clock(61.9), '1:01');
  assert.equal(clock(3600 + 62), '1:01:02');
});

test('page URLs: sessions, observe, recordings with filters, replay by recording id', () => {
  assert.deepEqual(views.parse('#/sessions'), { view: 'sessions' });
  assert.deepEqual(views.parse('#/sessions/'), { view: 'sessions' });
  assert.deepEqual(views.parse(views.observeHash('a/b c')), { view: 'observe', id: 'a/b c' });
  assert.deepEqual(views.parse('#/recordings'), { view: 'recordings', filter: {} });
  const f = { cluster: 'dev-east', user: 'zoë', since: '2026-12-01T00:00:00Z' };
  assert.equal(views.recordingsHash(f), '#/recordings?cluster=dev-east&user=zo%C3%AB&since=2026-12-01T00%3A00%3A00Z');
  assert.deepEqual(views.parse(views.recordingsHash(f)), { view: 'recordings', filter: f });
  assert.deepEqual(views.parse('#/recordings?pod=p&limit=2'), { view: 'recordings', filter: { pod: 'p' }, limit: 2 });
  assert.equal(views.recordingsHash({ pod: 'p' }, 2), '#/recordings?pod=p&limit=2');
  assert.equal(views.recordingsHash({}, 2), '#/recordings?limit=2');
  assert.deepEqual(views.parse('#/recordings?limit=0'), { view: 'recordings', filter: {} });
  assert.deepEqual(views.parse(views.replayHash('20261201.dev-east.abc')), { view: 'replay', id: '20261201.dev-east.abc' });
  for (const bad of ['#/', '#/sessions/x', '#/sessions//observe', '#/recordings/x/observe', '#/recordings/%E0%A4%A', '#/clusters/a/namespaces/b/pods/c']) {
    assert.equal(views.parse(bad), null, bad);
  }
  assert.equal(views.recordingsPath({ pod: 'shell-0', user: ' ' }, 50, 'tok'), '/podgate/recordings?pod=shell-0&limit=50&continue=tok');
});

test('terminate carries the reason; sizes and times read well', () => {
  assert.equal(terminatePath('abc', ''), '/podgate/sessions/abc');
  assert.equal(terminatePath('a/b', ' incident #412 '), '/podgate/sessions/a%2Fb?reason=incident+%23412');
  assert.equal(bytes(999), '999 B');
  assert.equal(bytes(1500), '1.5 kB');
  assert.equal(bytes(2_500_000), '2.5 MB');
  assert.equal(localToRfc3339(''), '');
  assert.equal(localToRfc3339('not a time'), '');
  const local = rfc3339ToLocal('2026-12-01T20:05:00Z');
  assert.match(local, /^\d{4}-\d\d-\d\dT\d\d:\d\d$/);
  assert.equal(localToRfc3339(local), '2026-12-01T20:05:00Z');
  const e = { outcome: 'exit_nonzero', exit_code: 3, truncated: true } as RecordingEntry;
  assert.equal(outcomeText(e), 'exit nonzero (3), truncated');
  assert.equal(outcomeText({ ...e, outcome: null }), 'live or cut short');
});

test('a browser session waiting for its page says so in the sessions list', () => {
  const s = { client: 'browser', tty: true } as LiveSession;
  assert.equal(clientText(s), 'browser');
  assert.equal(clientText({ ...s, resume: { waiting_seconds: null } }), 'browser');
  assert.equal(clientText({ ...s, resume: { waiting_seconds: 12.7 } }), 'browser, disconnected 12s ago (waiting to resume)');
  assert.equal(clientText({ ...s, client: 'kubectl', tty: false }), 'kubectl (no tty)');
});
