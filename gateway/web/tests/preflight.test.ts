// Unit tests of the picker's pre-flight (src/preflight.ts): the review it asks, and how it
// reads the cluster's answers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execReview, verdict } from '../src/preflight';

const t = { cluster: 'dev-east', namespace: 'default', pod: 'shell-0' };

test('the review asks what a WebSocket exec is authorized as: get pods/exec on that pod', () => {
  assert.deepEqual(execReview(t), {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    spec: {
      resourceAttributes: { verb: 'get', group: '', resource: 'pods', subresource: 'exec', namespace: 'default', name: 'shell-0' },
    },
  });
});

test('allowed opens, a refusal carries the cluster\'s reason', () => {
  assert.deepEqual(verdict(t, 201, JSON.stringify({ status: { allowed: true, reason: 'RBAC: ok' } })), { kind: 'allowed' });
  const no = verdict(t, 201, JSON.stringify({ status: { allowed: false, reason: 'podgate: cluster "dev-east" is open to user "alice" only in namespaces ["shop"]' } }));
  assert.equal(no.kind, 'denied');
  assert.equal(
    no.kind === 'denied' && no.message,
    'You may not open a shell in default/shell-0 on dev-east: the cluster answers that you cannot get pods/exec there ' +
      '(podgate: cluster "dev-east" is open to user "alice" only in namespaces ["shop"]).',
  );
  const bare = verdict(t, 201, JSON.stringify({ status: { allowed: false } }));
  assert.ok(bare.kind === 'denied' && bare.message.endsWith('(it gave no reason).'), JSON.stringify(bare));
  const both = verdict(t, 201, JSON.stringify({ status: { allowed: false, reason: 'r', evaluationError: 'e' } }));
  assert.ok(both.kind === 'denied' && both.message.endsWith('(r; e).'), JSON.stringify(both));
});

test('a failed review does not block the click', () => {
  const gone = verdict(t, 404, JSON.stringify({ kind: 'Status', message: 'the server could not find the requested resource', code: 404 }));
  assert.deepEqual(gone, { kind: 'unknown', message: 'the access review failed: the server could not find the requested resource' });
  assert.equal(verdict(t, 201, 'not json').kind, 'unknown');
  assert.equal(verdict(t, 201, JSON.stringify({ status: {} })).kind, 'unknown');
  assert.equal(verdict(t, 201, 'null').kind, 'unknown');
  assert.equal(verdict(t, 502, '').kind, 'unknown');
});
