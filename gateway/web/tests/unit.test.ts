// Unit tests of the web UI's pure parts (deep links, framing, UTF-8 boundaries, messages,
// command lines), run by node's test runner after tests/unit.mjs bundles them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { format, parse } from '../src/route';
import { endsMidCharacter, exitCodeOf, resizeFrame, stdinFrame, STDIN } from '../src/protocol';
import { ending, refusal } from '../src/messages';
import { splitCommand } from '../src/command';

test('deep links round-trip, with odd names escaped', () => {
  const t = { cluster: 'dev-east', namespace: 'default', pod: 'shell-0', container: 'main' };
  assert.equal(format(t), '#/clusters/dev-east/namespaces/default/pods/shell-0?container=main');
  assert.deepEqual(parse(format(t)), { ...t, command: undefined });
  const odd = { cluster: 'a b', namespace: 'n/s', pod: 'p?x', command: ['sh', '-c', 'echo a&b'] };
  assert.deepEqual(parse(format(odd)), { ...odd, container: undefined });
  assert.equal(parse('#/clusters/x'), null);
  assert.equal(parse('#/clusters/%E0%A4%A/namespaces/a/pods/b'), null);
  assert.equal(parse('#/'), null);
});

test('frames: stream byte first, resize as JSON', () => {
  assert.deepEqual([...stdinFrame('hi')], [STDIN, 0x68, 0x69]);
  const r = resizeFrame(120, 40);
  assert.equal(r[0], 4);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(r.subarray(1))), { Width: 120, Height: 40 });
});

test('a frame ending inside a UTF-8 character is recognised', () => {
  const euro = [0xe2, 0x82, 0xac];
  assert.equal(endsMidCharacter(new Uint8Array([0x61])), false);
  assert.equal(endsMidCharacter(new Uint8Array(euro)), false);
  assert.equal(endsMidCharacter(new Uint8Array(euro.slice(0, 1))), true);
  assert.equal(endsMidCharacter(new Uint8Array([0x61, ...euro.slice(0, 2)])), true);
  assert.equal(endsMidCharacter(new Uint8Array([0xf0, 0x9f, 0x98])), true);
  assert.equal(endsMidCharacter(new Uint8Array([0xf0, 0x9f, 0x98, 0x80])), false);
  assert.equal(endsMidCharacter(new Uint8Array([])), false);
});

test('exit codes come from the final Status', () => {
  assert.equal(exitCodeOf({ status: 'Success' }), 0);
  assert.equal(
    exitCodeOf({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '3' }] } }),
    3,
  );
  assert.equal(exitCodeOf({ status: 'Failure', reason: 'Timeout', message: 'idle' }), null);
});

test('refusals and endings read as what happened', () => {
  assert.equal(refusal(403, { message: 'pods "x" is forbidden' }).title, 'Forbidden');
  assert.equal(refusal(404, { message: 'pods "x" not found' }).title, 'Not found');
  assert.equal(refusal(429, { message: 'user has 1 open sessions' }).title, 'Session limit reached');
  assert.equal(refusal(503, { message: 'cluster "c" is unreachable' }).title, 'Cluster unreachable');
  assert.match(refusal(400, { message: 'Upgrade request required' }).detail, /session limit/);
  assert.equal(refusal(400, { message: 'container nope is not valid for pod multi-0' }).title, 'Container not found');
  assert.equal(ending(null, 3, '').title, 'process exited with code 3');
  assert.equal(ending({ reason: 'Timeout', message: 'podgate: session closed after 4s without input or output (idle timeout)' }, null, '').title, 'Idle timeout');
  assert.equal(ending({ reason: 'Timeout', message: 'podgate: session closed: it reached the maximum session duration of 12s' }, null, '').title, 'Maximum session duration reached');
  assert.equal(ending(null, null, '').title, 'Connection lost');
  assert.equal(ending({ reason: 'TooManyRequests', message: 'user "a" already has 1 open sessions' }, null, '').title, 'Session limit reached');
  assert.equal(ending(null, null, 'podgate: the gateway is shutting down').title, 'Session ended');
});

test('typed commands split like a shell would, quotes kept together', () => {
  assert.deepEqual(splitCommand('top -b  -n 1'), ['top', '-b', '-n', '1']);
  assert.deepEqual(splitCommand(`sh -c 'echo "a b"; ls'`), ['sh', '-c', 'echo "a b"; ls']);
  assert.deepEqual(splitCommand(`echo ''`), ['echo', '']);
  assert.deepEqual(splitCommand('   '), []);
});
