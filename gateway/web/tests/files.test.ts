import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  baseName, fileErrorCause, fileErrorText, fileUrl, joinPath, parseLimits, pathProblem, progressText, sizeText, tooLarge,
} from '../src/filetext';

test('fileUrl: the gateway URL for a container\'s file, every part encoded', () => {
  assert.equal(
    fileUrl('dev-east', 'default', 'shell-0', 'main', '/tmp/a b&c.bin'),
    '/podgate/clusters/dev-east/namespaces/default/pods/shell-0/file?container=main&path=%2Ftmp%2Fa+b%26c.bin',
  );
  assert.equal(fileUrl('a b', 'n', 'p', undefined, '/f'), '/podgate/clusters/a%20b/namespaces/n/pods/p/file?path=%2Ff');
});

test('pathProblem: absolute paths of files only', () => {
  assert.equal(pathProblem('/tmp/x'), '');
  assert.equal(pathProblem('/x'), '');
  assert.match(pathProblem(''), /absolute path/);
  assert.match(pathProblem('tmp/x'), /must be absolute/);
  assert.match(pathProblem('/tmp/'), /not a directory/);
  assert.match(pathProblem('/tmp/..'), /not a directory/);
  assert.match(pathProblem('/a\0b'), /NUL/);
});

test('joinPath and baseName', () => {
  assert.equal(joinPath('/tmp', 'a.txt'), '/tmp/a.txt');
  assert.equal(joinPath('/tmp/', 'a.txt'), '/tmp/a.txt');
  assert.equal(joinPath('', 'a.txt'), '/a.txt');
  assert.equal(joinPath('/d', 'x/y\\z'), '/d/x_y_z');
  assert.equal(baseName('/tmp/a.txt'), 'a.txt');
  assert.equal(baseName('/tmp/'), 'download');
});

test('sizeText and progressText', () => {
  assert.equal(sizeText(0), '0 B');
  assert.equal(sizeText(1023), '1023 B');
  assert.equal(sizeText(1536), '1.5 KiB');
  assert.equal(sizeText(3 * 1024 * 1024), '3.00 MiB');
  assert.equal(sizeText(100 * 1024 * 1024), '100.0 MiB');
  assert.equal(sizeText(-1), '? B');
  assert.equal(progressText(512, 1024), '512 B of 1.0 KiB (50%)');
  assert.equal(progressText(1024, 1024), '1.0 KiB of 1.0 KiB (100%)');
  assert.equal(progressText(2048, null), '2.0 KiB');
  assert.equal(progressText(0, 0), '0 B of 0 B (100%)');
  assert.equal(progressText(2000, 1000), '2.0 KiB of 1000 B (100%)');
});

test('tooLarge: the page\'s own check against the limit', () => {
  assert.equal(tooLarge(10, 100, 'upload'), '');
  assert.equal(tooLarge(100, 100, 'upload'), '');
  assert.match(tooLarge(101, 100, 'upload'), /podgate allows 100 B per upload/);
  assert.match(tooLarge(1, 0, 'download'), /does not allow file downloads/);
  assert.equal(tooLarge(1e12, undefined, 'upload'), '');
});

test('fileErrorText and fileErrorCause: the Status message and its cause', () => {
  const status = JSON.stringify({
    kind: 'Status', message: 'container "notar" has no tar on its PATH', code: 422,
    details: { causes: [{ reason: 'podgate.io/file-error', message: 'no_tar' }] },
  });
  assert.equal(fileErrorText(422, status), 'container "notar" has no tar on its PATH');
  assert.equal(fileErrorCause(status), 'no_tar');
  assert.equal(fileErrorCause('not json'), '');
  assert.equal(fileErrorCause('{"message":"x"}'), '');
  assert.equal(fileErrorText(502, 'Bad Gateway'), '502: Bad Gateway');
  assert.equal(fileErrorText(413, ''), 'The file is larger than podgate allows');
  assert.equal(fileErrorText(0, ''), 'The connection to podgate broke during the transfer');
  assert.equal(fileErrorText(500, ''), 'The transfer failed (500)');
});

test('parseLimits', () => {
  assert.deepEqual(parseLimits('{"max_upload":5,"max_download":6}'), { max_upload: 5, max_download: 6 });
  assert.equal(parseLimits('{"max_upload":"5"}'), null);
  assert.equal(parseLimits('<html>'), null);
});
