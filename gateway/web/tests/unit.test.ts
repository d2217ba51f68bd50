// Unit tests of the web UI's pure parts (deep links, framing, UTF-8 boundaries, messages,
// command lines, the login keepalive's schedule), run by node's test runner after
// tests/unit.mjs bundles them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { format, parse } from '../src/route';
import { endsMidCharacter, exitCodeOf, resizeFrame, stdinFrame, STDIN } from '../src/protocol';
import { checkContainer, containerNames, ending, outcomeOf, refusal, type ContainerCheck } from '../src/messages';
import { LoginKeepalive, type LoginCheck } from '../src/keepalive';
import type { Pod } from '../src/api';
import type { K8sStatus } from '../src/protocol';
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

// --- refusals and endings ------------------------------------------------------------------

const OUTCOME = 'podgate.io/outcome';

/// A `Status` as podgate writes it: marked with its outcome.
function podgate(outcome: string, code: number, reason: string, message: string): K8sStatus {
  return {
    kind: 'Status', status: 'Failure', code, reason, message,
    details: { causes: [{ reason: OUTCOME, message: outcome }] },
  };
}
/// A cluster's own `Status`: no podgate cause.
function cluster(code: number, reason: string, message: string): K8sStatus {
  return { kind: 'Status', status: 'Failure', code, reason, message };
}
const exited = (n: number): K8sStatus => n === 0
  ? { kind: 'Status', status: 'Success' }
  : { kind: 'Status', status: 'Failure', reason: 'NonZeroExitCode', message: `command terminated with non-zero exit code: ${n}`,
      details: { causes: [{ reason: 'ExitCode', message: String(n) }] } };

/// Refusals: [what, probe code, Status, what the pod says, title].
const REFUSALS: [string, number, K8sStatus | null, ContainerCheck, string][] = [
  // podgate's own, by its outcome cause.
  ['edge policy', 403, podgate('denied', 403, 'Forbidden', 'bob may not use cluster "dev-east"'), 'unknown', 'Forbidden'],
  ['session limit', 429, podgate('limit_reached', 429, 'TooManyRequests', 'user "a" already has 1 open sessions, the most allowed'), 'unknown', 'Session limit reached'],
  ['cluster down', 503, podgate('upstream_error', 503, 'ServiceUnavailable', 'cluster "dev-west" is unreachable from podgate: connection refused'), 'unknown', 'Cluster unreachable'],
  ['cluster request failed', 502, podgate('upstream_error', 502, 'InternalError', 'request to cluster "c" failed: reset'), 'unknown', 'Cluster unreachable'],
  ['podgate bad request', 400, podgate('bad_request', 400, 'BadRequest', 'podgate cannot read the exec request: x'), 'missing', 'Bad request'],
  ['login expired (with cause)', 401, podgate('credential_expired', 401, 'Unauthorized', 'Unauthorized'), 'unknown', 'Login expired'],
  // Without a cause: the HTTP code and the reason.
  ['not logged in', 401, cluster(401, 'Unauthorized', 'Unauthorized'), 'unknown', 'Not logged in'],
  ['cluster Forbidden', 403, cluster(403, 'Forbidden', 'pods "shell-0" is forbidden: User "bob" cannot get resource "pods/exec"'), 'unknown', 'Forbidden'],
  ['cluster NotFound', 404, cluster(404, 'NotFound', 'pods "nope-0" not found'), 'unknown', 'Not found'],
  ['429 without a cause', 429, cluster(429, 'TooManyRequests', 'slow down'), 'unknown', 'Session limit reached'],
  ['503 TooManyRequests', 503, cluster(503, 'TooManyRequests', 'too many'), 'unknown', 'Session limit reached'],
  ['503 without a cause', 503, cluster(503, 'ServiceUnavailable', 'podgate is at its limit of 10 open connections'), 'unknown', 'Cluster unreachable'],
  ['504 Timeout', 504, cluster(504, 'Timeout', 'the server was unable to return a response in time'), 'unknown', 'Cluster unreachable'],
  ['no body', 502, null, 'unknown', 'Cluster unreachable'],
  // The cluster's 400, told apart by the pod.
  ['a container the pod lacks', 400, cluster(400, 'BadRequest', 'container nope is not valid for pod multi-0'), 'missing', 'Container not found'],
  ['the exec would be allowed', 400, cluster(400, 'BadRequest', 'Upgrade request required'), 'present', 'podgate refused the session'],
  ['no container named, several', 400, cluster(400, 'BadRequest', 'a container name must be specified for pod multi-0'), 'unnamed', 'Bad request'],
  ['the pod unreadable', 400, cluster(400, 'BadRequest', 'container nope is not valid for pod multi-0'), 'unknown', 'Bad request'],
  ['something else', 500, cluster(500, 'InternalError', 'boom'), 'unknown', 'Could not open the terminal (HTTP 500)'],
  ['recording required, unavailable', 503, podgate('recording_failed', 503, 'ServiceUnavailable', 'podgate: cluster "c" records every session (recording: required), and this one\'s recording could not start'), 'unknown', 'Recording unavailable'],
];

/// Endings: [what, last Status on stream 3, close code, close reason, title].
const ENDINGS: [string, K8sStatus | null, number, string, string][] = [
  ['exit 0', exited(0), 1000, '', 'process exited with code 0'],
  ['exit 3', exited(3), 1000, '', 'process exited with code 3'],
  ['exit 3, marked', { ...exited(3), details: { causes: [{ reason: 'ExitCode', message: '3' }, { reason: OUTCOME, message: 'exit_nonzero' }] } }, 1000, '', 'process exited with code 3'],
  ['idle timeout', podgate('idle_timeout', 408, 'Timeout', 'podgate: session closed after 4s without input or output (idle timeout)'), 1000, 'idle', 'Idle timeout'],
  ['maximum duration', podgate('max_duration', 408, 'Timeout', 'podgate: session closed: it reached the maximum session duration of 12s'), 1000, '', 'Maximum session duration reached'],
  ['shutdown', podgate('shutdown', 503, 'ServiceUnavailable', 'podgate: the gateway is shutting down'), 1000, '', 'podgate is restarting'],
  ['credential expired', podgate('credential_expired', 401, 'Unauthorized', 'podgate: the login this session was opened with expired'), 1000, '', 'Login expired'],
  ['access revoked', podgate('access_revoked', 403, 'Forbidden', 'podgate: your access to cluster "c" was revoked'), 1000, '', 'Access revoked'],
  ['ended by an operator', podgate('terminated', 403, 'Forbidden', 'podgate: session closed by admin: incident 412'), 1000, '', 'Ended by an operator'],
  ['recording failed', podgate('recording_failed', 503, 'ServiceUnavailable', 'podgate: session closed: its recording failed'), 1000, '', 'Recording failed'],
  ['cluster connection lost', podgate('upstream_lost', 503, 'ServiceUnavailable', 'the connection to cluster "c" was lost: reset'), 1011, '', 'Connection to the cluster lost'],
  ['cluster broke the protocol', podgate('upstream_error', 500, 'InternalError', 'the cluster sent a message over the limit'), 1011, '', 'Session ended'],
  ['session limit, inside the socket', podgate('limit_reached', 429, 'TooManyRequests', 'user "a" already has 1 open sessions, the most allowed'), 1008, 'user "a"', 'Session limit reached'],
  ['client unresponsive', podgate('client_unresponsive', 500, 'InternalError', 'x'), 1000, '', 'Connection lost'],
  // Without a cause: the reason, then the close code.
  ['limit without a cause', cluster(429, 'TooManyRequests', 'user "a" already has 1 open sessions'), 1008, '', 'Session limit reached'],
  ['Timeout without a cause', cluster(408, 'Timeout', 'podgate: session closed after 4s without input or output (idle timeout)'), 1000, '', 'Session timed out'],
  ['cluster failure', cluster(500, 'InternalError', 'exec: "nope": executable file not found in $PATH'), 1000, '', 'Session ended'],
  ['dropped connection', null, 1006, '', 'Connection lost'],
  ['1011 without a Status', null, 1011, '', 'Connection to the cluster lost'],
  ['a close with a reason', null, 1000, 'podgate: the gateway is shutting down', 'Session ended'],
  ['a clean close, no Status', null, 1000, '', 'Session ended'],
];

test('refusals: the outcome cause, else the HTTP code and reason, else the pod', () => {
  for (const [what, code, st, container, title] of REFUSALS) {
    assert.equal(refusal(code, st, container).title, title, what);
  }
  // The detail is the Status message as written (the gateway's or the cluster's).
  assert.equal(refusal(403, REFUSALS[7][2]).detail, REFUSALS[7][2]?.message);
  assert.equal(refusal(400, REFUSALS[14][2], 'missing').detail, 'container nope is not valid for pod multi-0');
  assert.match(refusal(400, cluster(400, 'BadRequest', 'Upgrade request required'), 'present').detail, /connection limit/);
  // A refusal the pod cannot explain is never called a missing container.
  for (const c of ['present', 'unnamed', 'unknown'] as const) {
    assert.notEqual(refusal(400, cluster(400, 'BadRequest', 'container nope is not valid for pod multi-0'), c).title, 'Container not found');
  }
});

test('endings: the exit code, else the outcome cause, else the reason, else the close code', () => {
  for (const [what, st, code, reason, title] of ENDINGS) {
    assert.equal(ending(st, { code, reason }).title, title, what);
  }
  assert.equal(ending(ENDINGS[3][1], { code: 1000, reason: '' }).detail, ENDINGS[3][1]?.message);
  assert.equal(ending(null, { code: 1000, reason: 'bye' }).detail, 'bye');
  assert.match(ending(ENDINGS[6][1], { code: 1000, reason: '' }).detail, /Sign in again/);
  assert.equal(ending(ENDINGS[6][1], { code: 1000, reason: '' }).retry, false);
  assert.equal(ending(ENDINGS[5][1], { code: 1000, reason: '' }).retry, true);
  assert.equal(ending(exited(0), { code: 1000, reason: '' }).tone, 'ok');
  assert.equal(ending(exited(3), { code: 1000, reason: '' }).tone, 'exit');
  assert.equal(ending(ENDINGS[3][1], { code: 1000, reason: '' }).tone, undefined);
});

test('no message text is read: gibberish in place of every message maps to the same title', () => {
  const gibberish = 'qx zzv 7 plorf "upgrade"? wibble';
  const garble = (st: K8sStatus | null): K8sStatus | null => (st ? { ...st, message: gibberish } : st);
  for (const [what, code, st, container, title] of REFUSALS) {
    const n = refusal(code, garble(st), container);
    assert.equal(n.title, title, what);
  }
  for (const [what, st, code, reason, title] of ENDINGS) {
    assert.equal(ending(garble(st), { code, reason: reason && gibberish }).title, title, what);
  }
  // And English that names another ending does not move the title: the cause decides.
  const idle = podgate('idle_timeout', 408, 'Timeout', 'it reached the maximum session duration of 12s');
  assert.equal(ending(idle, { code: 1000, reason: '' }).title, 'Idle timeout');
  const max = podgate('max_duration', 408, 'Timeout', 'closed after 4s without input or output (idle timeout)');
  assert.equal(ending(max, { code: 1000, reason: '' }).title, 'Maximum session duration reached');
  assert.equal(refusal(400, cluster(400, 'BadRequest', 'Upgrade request required'), 'missing').title, 'Container not found');
  assert.equal(refusal(400, cluster(400, 'BadRequest', 'container nope is not valid for pod x'), 'present').title, 'podgate refused the session');
});

test('the outcome cause is read from details.causes', () => {
  assert.equal(outcomeOf(podgate('shutdown', 503, 'ServiceUnavailable', '')), 'shutdown');
  assert.equal(outcomeOf(cluster(403, 'Forbidden', '')), null);
  assert.equal(outcomeOf(exited(3)), null);
  assert.equal(outcomeOf(null), null);
  // A newer gateway's outcome this UI does not know falls back to code and reason.
  assert.equal(refusal(403, podgate('something_new', 403, 'Forbidden', 'x')).title, 'Forbidden');
  assert.equal(ending(podgate('something_new', 408, 'Timeout', 'x'), { code: 1000, reason: '' }).title, 'Session timed out');
});

test('the pod says whether it has the container', () => {
  const pod: Pod = {
    metadata: { name: 'multi-0' },
    spec: { containers: [{ name: 'app' }, { name: 'sidecar' }], initContainers: [{ name: 'init' }], ephemeralContainers: [{ name: 'debugger' }] },
  };
  assert.deepEqual(containerNames(pod), ['app', 'sidecar', 'init', 'debugger']);
  assert.equal(checkContainer(pod, 'sidecar'), 'present');
  assert.equal(checkContainer(pod, 'init'), 'present');
  assert.equal(checkContainer(pod, 'debugger'), 'present');
  assert.equal(checkContainer(pod, 'nope'), 'missing');
  assert.equal(checkContainer(pod, undefined), 'unnamed');
  assert.equal(checkContainer({ metadata: { name: 's' }, spec: { containers: [{ name: 'main' }] } }, undefined), 'present');
  assert.equal(checkContainer(null, 'nope'), 'unknown');
});

// --- the login keepalive ------------------------------------------------------------------

/// A fake clock: timers fire only when the test advances time.
class FakeTimers {
  now = 0;
  private next = 1;
  readonly pending = new Map<number, { at: number; fn: () => void }>();
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = this.next++;
    this.pending.set(id, { at: this.now + ms, fn });
    return id;
  };
  clearTimeout = (handle: unknown): void => {
    this.pending.delete(handle as number);
  };
  /// Moves time on by `ms`, firing what falls due in order, and lets promises settle.
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      const due = [...this.pending.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.pending.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
      await settle();
    }
    this.now = end;
    await settle();
  }
}
const settle = () => new Promise<void>((r) => setImmediate(r));

function keepalive(answers: LoginCheck[] | (() => Promise<LoginCheck>)) {
  const timers = new FakeTimers();
  const asked: number[] = [];
  let lost = 0;
  const check = typeof answers === 'function'
    ? answers
    : async () => {
      asked.push(timers.now);
      return answers.shift() ?? 'ok';
    };
  const k = new LoginKeepalive(check, () => lost++, timers);
  return { k, timers, asked, lost: () => lost };
}

test('keepalive: no timer without a terminal; a request every interval, well inside 60 s', async () => {
  const { k, timers, asked } = keepalive([]);
  assert.ok(k.intervalMs <= 30_000, `${k.intervalMs} ms leaves no request in some 60 s refresh window`);
  assert.equal(timers.pending.size, 0);
  await timers.advance(120_000);
  assert.deepEqual(asked, []);
  k.setOpenTerminals(1);
  assert.equal(timers.pending.size, 1);
  assert.equal(k.running, true);
  await timers.advance(k.intervalMs - 1);
  assert.deepEqual(asked, []);
  await timers.advance(1);
  const t0 = timers.now;
  await timers.advance(3 * k.intervalMs);
  assert.deepEqual(asked, [t0, t0 + k.intervalMs, t0 + 2 * k.intervalMs, t0 + 3 * k.intervalMs]);
  // Every 60 s window while a terminal is open holds a request.
  for (let w = t0; w + 60_000 <= timers.now; w += 1000) {
    assert.ok(asked.some((a) => a >= w && a < w + 60_000), `no request in [${w}, ${w + 60_000})`);
  }
  assert.equal(timers.pending.size, 1);
  assert.equal(k.requests, 4);
});

test('keepalive: stops at no terminal, restarts with one; more terminals change nothing', async () => {
  const { k, timers, asked } = keepalive([]);
  k.setOpenTerminals(1);
  await timers.advance(10_000);
  k.setOpenTerminals(2); // the same timer, the same deadline
  k.setOpenTerminals(3);
  assert.equal(timers.pending.size, 1);
  await timers.advance(k.intervalMs - 10_000);
  assert.equal(asked.length, 1);
  k.setOpenTerminals(0);
  assert.equal(timers.pending.size, 0);
  assert.equal(k.running, false);
  await timers.advance(10 * k.intervalMs);
  assert.equal(asked.length, 1);
  k.setOpenTerminals(1);
  assert.equal(timers.pending.size, 1);
  await timers.advance(k.intervalMs);
  assert.equal(asked.length, 2);
});

test('keepalive: a 401 stops it for good and says so once; a failed request is retried', async () => {
  const { k, timers, asked, lost } = keepalive(['ok', 'failed', 'ok', 'unauthorized', 'ok']);
  k.setOpenTerminals(1);
  await timers.advance(3 * k.intervalMs);
  assert.equal(asked.length, 3);
  assert.equal(lost(), 0);
  await timers.advance(k.intervalMs);
  assert.equal(asked.length, 4);
  assert.equal(lost(), 1);
  assert.equal(timers.pending.size, 0);
  assert.equal(k.running, false);
  k.setOpenTerminals(0);
  k.setOpenTerminals(2);
  assert.equal(timers.pending.size, 0);
  await timers.advance(10 * k.intervalMs);
  assert.equal(asked.length, 4);
  assert.equal(lost(), 1);
});

test('keepalive: requests never overlap, and a slow one is not doubled by terminals coming and going', async () => {
  let resolve: (r: LoginCheck) => void = () => {};
  let calls = 0;
  const { k, timers } = keepalive(() => {
    calls++;
    return new Promise<LoginCheck>((r) => { resolve = r; });
  });
  k.setOpenTerminals(1);
  await timers.advance(k.intervalMs);
  assert.equal(calls, 1);
  // In flight: no timer until it answers.
  assert.equal(timers.pending.size, 0);
  await timers.advance(5 * k.intervalMs);
  assert.equal(calls, 1);
  // Closed and reopened while it is in flight: one timer, then the answer adds none.
  k.setOpenTerminals(0);
  k.setOpenTerminals(1);
  assert.equal(timers.pending.size, 1);
  resolve('ok');
  await settle();
  assert.equal(timers.pending.size, 1);
  // Closed while in flight: the answer sets no timer.
  await timers.advance(k.intervalMs);
  assert.equal(calls, 2);
  k.setOpenTerminals(0);
  resolve('ok');
  await settle();
  assert.equal(timers.pending.size, 0);
});

test('typed commands split like a shell would, quotes kept together', () => {
  assert.deepEqual(splitCommand('top -b  -n 1'), ['top', '-b', '-n', '1']);
  assert.deepEqual(splitCommand(`sh -c 'echo "a b"; ls'`), ['sh', '-c', 'echo "a b"; ls']);
  assert.deepEqual(splitCommand(`echo ''`), ['echo', '']);
  assert.deepEqual(splitCommand('   '), []);
});

test('cluster picker: pages are asked for with the search, and clusters read with their environment', async () => {
  const { clustersPath, clusterLabel } = await import('../src/api');
  assert.equal(clustersPath('', 50), '/podgate/clusters?limit=50');
  assert.equal(clustersPath('  prod eu ', 50), '/podgate/clusters?limit=50&search=prod+eu');
  assert.equal(clustersPath('a&b=c', 10, 'tok/+='), '/podgate/clusters?limit=10&search=a%26b%3Dc&continue=tok%2F%2B%3D');
  assert.equal(clusterLabel({ id: 'dev', up: true, version: 'v1.32.0' }), 'dev — up (v1.32.0)');
  assert.equal(clusterLabel({ id: 'dev', display_name: 'dev', up: true }), 'dev — up');
  assert.equal(
    clusterLabel({ id: 'prod-eu-1', display_name: 'Frankfurt', environment: 'production', up: false, error: 'timeout' }),
    'Frankfurt (prod-eu-1) [production] — unreachable: timeout',
  );
  assert.equal(clusterLabel({ id: 'dev', up: false, checked_at: '2026-12-02T10:00:00Z' }), 'dev — unreachable');
  assert.equal(clusterLabel({ id: 'dev', up: false, checked_at: null }), 'dev — not checked yet');
});
