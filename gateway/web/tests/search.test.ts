// Unit tests of src/searchlogic.ts: recent clusters, the clusters a search names, the request
// path, reading answers, notes, keyboard movement and ages.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RECENT_CLUSTERS_KEY, RECENT_CLUSTERS_LIMIT, age, loadRecentClusters, move, notes, parseAnswer, rememberCluster,
  searchClusters, searchPath, syncing,
} from '../src/searchlogic';
import type { Store } from '../src/where';

function memory(): Store & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return { data, getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v) };
}

test('recent clusters are newest first, once each, bounded, and survive junk', () => {
  const s = memory();
  assert.deepEqual(loadRecentClusters(s), []);
  rememberCluster(s, 'a');
  rememberCluster(s, 'b');
  assert.deepEqual(rememberCluster(s, 'a'), ['a', 'b']);
  for (let i = 0; i < 20; i++) rememberCluster(s, `c${i}`);
  assert.equal(loadRecentClusters(s).length, RECENT_CLUSTERS_LIMIT);
  s.data.set(RECENT_CLUSTERS_KEY, '{not json');
  assert.deepEqual(loadRecentClusters(s), []);
  s.data.set(RECENT_CLUSTERS_KEY, JSON.stringify(['x', 3, '', 'x', null, 'y']));
  assert.deepEqual(loadRecentClusters(s), ['x', 'y']);
  assert.deepEqual(loadRecentClusters(null), []);
  assert.deepEqual(rememberCluster(s, ''), ['x', 'y']);
});

test('a search names the chosen cluster, then recent ones, never more than allowed', () => {
  assert.deepEqual(searchClusters('east', ['west', 'east', 'north']), ['east', 'west', 'north']);
  assert.deepEqual(searchClusters('', ['west']), ['west']);
  assert.deepEqual(searchClusters('a', ['b', 'c', 'd', 'e', 'f', 'g']), ['a', 'b', 'c', 'd', 'e']);
  assert.deepEqual(searchClusters('a', ['b', 'c'], 2), ['a', 'b']);
  assert.equal(searchPath(' app=web ', ['a', 'b'], 20), '/podgate/pods/search?q=app%3Dweb&cluster=a&cluster=b&limit=20');
});

test('answers are read defensively and explained', () => {
  const a = parseAnswer({
    results: [
      { cluster: 'east', namespace: 'shop', pod: 'web-1', phase: 'Running', ready: '1/1', restarts: 2, age_seconds: 4000, node: 'n1',
        owner: { kind: 'Deployment', name: 'web' } },
      { cluster: 'east', namespace: 3, pod: 'bad' },
      'junk',
    ],
    matched: 120,
    clusters: [
      { cluster: 'east', state: 'ready', message: null, truncated: true, matched: 100 },
      { cluster: 'west', state: 'syncing', message: null, truncated: false, matched: 20 },
      { cluster: 'gone', state: 'weird', message: 'cluster "gone" is not known to podgate' },
    ],
  });
  assert.equal(a.hits.length, 1);
  assert.equal(a.hits[0].owner, 'Deployment/web');
  assert.equal(a.hits[0].ageSeconds, 4000);
  assert.equal(a.clusters[2].state, 'error');
  assert.ok(syncing(a));
  assert.deepEqual(notes(a), [
    'east: has more pods than podgate indexes; some are not searched.',
    'west: still loading its pods…',
    'gone: cluster "gone" is not known to podgate',
    'Showing 1 of 120; type more to narrow.',
  ]);
  assert.deepEqual(parseAnswer(null), { hits: [], matched: 0, clusters: [] });
  assert.ok(!syncing(parseAnswer({ clusters: [{ cluster: 'a', state: 'ready' }] })));
});

test('arrow keys move through the results, starting with none chosen', () => {
  assert.equal(move(-1, 'ArrowDown', 3), 0);
  assert.equal(move(0, 'ArrowDown', 3), 1);
  assert.equal(move(2, 'ArrowDown', 3), 2);
  assert.equal(move(1, 'ArrowUp', 3), 0);
  assert.equal(move(0, 'ArrowUp', 3), 0);
  assert.equal(move(-1, 'ArrowUp', 3), -1);
  assert.equal(move(1, 'End', 3), 2);
  assert.equal(move(2, 'Home', 3), 0);
  assert.equal(move(5, 'x', 3), 2);
  assert.equal(move(0, 'ArrowDown', 0), -1);
});

test('ages read as kubectl writes them', () => {
  assert.equal(age(5), '5s');
  assert.equal(age(119), '119s');
  assert.equal(age(600), '10m');
  assert.equal(age(7300), '2h');
  assert.equal(age(3 * 86400), '3d');
  assert.equal(age(null), '');
});
