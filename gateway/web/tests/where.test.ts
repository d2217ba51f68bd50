// Unit tests of src/where.ts: tab titles and paths, production marking, the recent-pods store,
// the limits countdown, font size steps and the copy/paste keys.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_FONT, FONT_SIZES, RECENT_KEY, RECENT_LIMIT, environmentMark, fullPath, humanDuration, isMac, limitsText,
  loadFont, loadRecent, parseLimits, recentFirst, rememberRecent, saveFont, shortcuts, stepFont, tabTitle, type Store,
} from '../src/where';

function memory(): Store & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return { data, getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v) };
}

test('a tab title starts with the cluster, then pod and container', () => {
  assert.equal(tabTitle({ cluster: 'prod-eu-1', namespace: 'shop', pod: 'web-0', container: 'app' }), 'prod-eu-1 › web-0/app');
  assert.equal(tabTitle({ cluster: 'dev-east', namespace: 'default', pod: 'shell-0' }), 'dev-east › shell-0');
});

test('the full path names the cluster, namespace, pod, container and command', () => {
  const t = { cluster: 'prod-eu-1', namespace: 'shop', pod: 'web-0', container: 'app' };
  assert.equal(fullPath(t, 'Production EU 1'), 'Production EU 1 (prod-eu-1) / shop / web-0 / app');
  assert.equal(fullPath(t, 'prod-eu-1'), 'prod-eu-1 / shop / web-0 / app');
  assert.equal(fullPath({ ...t, command: ['top', '-b'] }), 'prod-eu-1 / shop / web-0 / app — top -b');
});

test('production is marked in words, other environments plainly', () => {
  assert.deepEqual(environmentMark('production'), { production: true, text: 'PRODUCTION', short: 'PROD' });
  assert.deepEqual(environmentMark('Prod'), { production: true, text: 'PRODUCTION', short: 'PROD' });
  assert.deepEqual(environmentMark('staging'), { production: false, text: 'STAGING', short: 'STAGING' });
  assert.deepEqual(environmentMark(null), { production: false, text: '', short: '' });
  assert.equal(environmentMark('production-like').production, false);
});

test('recent pods: newest first, one entry per pod, bounded', () => {
  const s = memory();
  assert.deepEqual(loadRecent(s), []);
  rememberRecent(s, { cluster: 'a', namespace: 'default', pod: 'p1' });
  rememberRecent(s, { cluster: 'a', namespace: 'default', pod: 'p2', container: 'c' });
  const list = rememberRecent(s, { cluster: 'a', namespace: 'default', pod: 'p1', container: 'x', command: ['top'] });
  assert.deepEqual(list, [
    { cluster: 'a', namespace: 'default', pod: 'p1', container: 'x' },
    { cluster: 'a', namespace: 'default', pod: 'p2', container: 'c' },
  ]);
  assert.deepEqual(loadRecent(s), list);
  for (let i = 0; i < 20; i++) rememberRecent(s, { cluster: 'b', namespace: 'ns', pod: `q${i}` });
  const full = loadRecent(s);
  assert.equal(full.length, RECENT_LIMIT);
  assert.equal(full[0].pod, 'q19');
  assert.equal(full[RECENT_LIMIT - 1].pod, `q${20 - RECENT_LIMIT}`);
});

test('recent pods: whatever is malformed in storage is dropped', () => {
  const s = memory();
  s.setItem(RECENT_KEY, 'not json');
  assert.deepEqual(loadRecent(s), []);
  s.setItem(RECENT_KEY, JSON.stringify([{ cluster: 'a', namespace: 'n', pod: 'p' }, { cluster: 1 }, null, 'x', { cluster: 'a', namespace: '', pod: 'q' }]));
  assert.deepEqual(loadRecent(s), [{ cluster: 'a', namespace: 'n', pod: 'p' }]);
  assert.deepEqual(loadRecent(null), []);
});

test('recent pods of this cluster and namespace come first in the pod list', () => {
  const recent = [
    { cluster: 'a', namespace: 'n', pod: 'web-2' },
    { cluster: 'b', namespace: 'n', pod: 'web-1' },
    { cluster: 'a', namespace: 'n', pod: 'gone' },
    { cluster: 'a', namespace: 'n', pod: 'web-0' },
  ];
  assert.deepEqual(recentFirst(['web-0', 'web-1', 'web-2', 'web-3'], recent, 'a', 'n'), { recent: ['web-2', 'web-0'], rest: ['web-1', 'web-3'] });
  assert.deepEqual(recentFirst(['web-0'], recent, 'c', 'n'), { recent: [], rest: ['web-0'] });
});

test('limits come from the hello', () => {
  assert.deepEqual(parseLimits('{"type":"hello","limits":{"idle_timeout_seconds":900,"max_duration_seconds":null}}'),
    { idleTimeoutSeconds: 900, maxDurationSeconds: null });
  assert.equal(parseLimits('{"type":"hello"}'), null);
  assert.equal(parseLimits('{"type":"heartbeat","limits":{}}'), null);
  assert.equal(parseLimits('nope'), null);
});

test('limits read plainly, and count down when near', () => {
  const l = { idleTimeoutSeconds: 900, maxDurationSeconds: 8 * 3600 };
  const t0 = 1_000_000;
  assert.deepEqual(limitsText(l, t0, t0, t0), { text: 'idle timeout 15m · maximum duration 8h', near: false });
  // 13 of 15 minutes idle (2 min left, within a fifth): the idle countdown.
  assert.deepEqual(limitsText(l, t0 + 13 * 60_000, t0, t0),
    { text: 'idle: ends in 2m without input or output · maximum duration 8h', near: true });
  // 7h 55m in: 5 minutes left of 8 h.
  const late = t0 + (7 * 3600 + 55 * 60) * 1000;
  assert.deepEqual(limitsText(l, late, t0, late),
    { text: 'idle timeout 15m · maximum duration: ends in 5m', near: true });
  assert.deepEqual(limitsText({ idleTimeoutSeconds: null, maxDurationSeconds: 12 }, t0 + 20_000, t0, t0),
    { text: 'maximum duration: ends in 0s', near: true });
  assert.deepEqual(limitsText(null, t0, t0, t0), { text: '', near: false });
  assert.equal(humanDuration(125), '2m 05s');
  assert.equal(humanDuration(5400), '1h 30m');
  assert.equal(humanDuration(45), '45s');
});

test('font sizes step through a fixed list and stay at the ends', () => {
  assert.equal(stepFont(14, 1), 16);
  assert.equal(stepFont(14, -1), 13);
  assert.equal(stepFont(15, -1), 14);
  assert.equal(stepFont(FONT_SIZES[0], -1), FONT_SIZES[0]);
  const max = FONT_SIZES[FONT_SIZES.length - 1];
  assert.equal(stepFont(max, 1), max);
  const s = memory();
  assert.equal(loadFont(s), DEFAULT_FONT);
  saveFont(s, 18);
  assert.equal(loadFont(s), 18);
  s.setItem('podgate.fontSize', '17');
  assert.equal(loadFont(s), DEFAULT_FONT);
});

test('copy and paste keys are named for the platform', () => {
  assert.ok(isMac('MacIntel'));
  assert.ok(!isMac('Linux x86_64'));
  const mac = shortcuts(true).map(([k]) => k).join('\n');
  const other = shortcuts(false).map(([k]) => k).join('\n');
  assert.match(mac, /⌘C/);
  assert.match(mac, /⌘V/);
  assert.match(other, /Ctrl\+Shift\+C/);
  assert.match(other, /Shift\+Insert/);
  assert.doesNotMatch(other, /⌘/);
});
