import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogBuffer, MAX_LINES, errorText, logFileName, logPath, matchRanges, stepMatch } from '../src/logtext';

test('logPath: the pods/log URL with its options', () => {
  assert.equal(
    logPath('dev-east', 'shop', 'db-0', { container: 'main', follow: true, previous: true, timestamps: true, tailLines: 5 }),
    '/clusters/dev-east/api/v1/namespaces/shop/pods/db-0/log?container=main&follow=true&previous=true&timestamps=true&tailLines=5',
  );
  assert.equal(logPath('a b', 'n', 'p', { follow: false, previous: false, timestamps: false }), '/clusters/a%20b/api/v1/namespaces/n/pods/p/log?');
});

test('LogBuffer: chunks split mid-line, CRLF, the last line without a newline', () => {
  const b = new LogBuffer();
  assert.equal(b.push('one\ntw'), 1);
  assert.deepEqual(b.kept(), ['one']);
  assert.equal(b.push('o\r\nthree'), 1);
  assert.deepEqual(b.kept(), ['one', 'two']);
  b.end();
  assert.deepEqual(b.kept(), ['one', 'two', 'three']);
  assert.equal(b.text(), 'one\ntwo\nthree\n');
});

test('LogBuffer: bounded by lines, the oldest dropped and counted', () => {
  const b = new LogBuffer(3, 1 << 20);
  for (let i = 1; i <= 2000; i++) b.push(`line ${i}\n`);
  assert.deepEqual(b.kept(), ['line 1998', 'line 1999', 'line 2000']);
  assert.equal(b.dropped, 1997);
  assert.equal(b.total, 2000);
  assert.match(b.text(), /^\[podgate: 1997 earlier lines dropped/);
  assert.equal(MAX_LINES, 10_000);
});

test('LogBuffer: bounded by size', () => {
  const b = new LogBuffer(1000, 100);
  for (let i = 0; i < 50; i++) b.push('x'.repeat(19) + '\n');
  assert.ok(b.kept().length <= 5, `${b.kept().length}`);
  assert.equal(b.dropped + b.kept().length, 50);
  b.clear();
  assert.deepEqual(b.kept(), []);
  assert.equal(b.text(), '');
});

test('LogBuffer: a log without newlines is broken into bounded lines, nothing lost', () => {
  const b = new LogBuffer(1000, 1 << 20, 10);
  for (let i = 0; i < 7; i++) b.push('abcdefgh');
  assert.deepEqual(b.kept(), ['abcdefghab', 'cdefghabcd', 'efghabcdef', 'ghabcdefgh', 'abcdefghab']);
  b.end();
  assert.equal(b.kept().join(''), 'abcdefgh'.repeat(7));
});

test('matchRanges and stepMatch', () => {
  assert.deepEqual(matchRanges('Error: error here', 'error'), [[0, 5], [7, 12]]);
  assert.deepEqual(matchRanges('abc', ''), []);
  assert.equal(stepMatch(-1, 3, true), 0);
  assert.equal(stepMatch(-1, 3, false), 2);
  assert.equal(stepMatch(2, 3, true), 0);
  assert.equal(stepMatch(0, 3, false), 2);
  assert.equal(stepMatch(0, 0, true), -1);
});

test('errorText: the Status message, else the body', () => {
  const status = JSON.stringify({ kind: 'Status', status: 'Failure', message: 'previous terminated container "main" in pod "shell-0" not found', code: 400 });
  assert.equal(errorText(400, status), 'previous terminated container "main" in pod "shell-0" not found');
  assert.equal(errorText(502, 'bad gateway'), '502: bad gateway');
  assert.equal(errorText(500, ''), 'the log request failed (500)');
  assert.equal(logFileName('db-0', 'main', true), 'db-0_main_previous.log');
});
