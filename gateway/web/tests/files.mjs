// File upload and download in real Chromium (gateway/web/src/files.ts): the Files button of a
// terminal, a binary file (every byte value, several MiB) uploaded with its progress and found
// byte-exact on the container's disk, downloaded with its progress and saved byte-exact, and
// the message for a container without tar. Run by tests/tests/ui_files.rs with
//   PODGATE_URL          https://127.0.0.1:PORT of a gateway in front of the files topology
//   PODGATE_TOKEN        a token for its dev login
//   PODGATE_FILES_DIR    a directory of the test's own the container can write (a host path:
//                        the devcluster's containers are local processes)
//   PODGATE_SCREENSHOTS  directory for screenshots
// Prints "ok - NAME" / "FAIL - NAME: why" and "N passed, N failed".
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { BASE, devLogin, finish, firstPage, launch, pick, scenario, shot, until, waitOpen } from './driver.mjs';

const TOKEN = process.env.PODGATE_TOKEN;
const DIR = process.env.PODGATE_FILES_DIR;
const MAIN = { cluster: 'dev', namespace: 'default', pod: 'files-0', container: 'main' };
const NOTAR = { cluster: 'dev', namespace: 'default', pod: 'files-0', container: 'notar' };

const errors = [];
const ctx = await launch();
const page = await firstPage(ctx, errors);

/// Every byte value, then a non-repeating pattern: 12 MiB.
function binary(len) {
  const out = Buffer.alloc(len);
  for (let i = 0; i < 256; i++) out[i] = i;
  let x = 0x9e3779b9;
  for (let i = 256; i < len; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x >>> 24;
  }
  return out;
}
const DATA = binary(12 * 1024 * 1024 + 4321);

const panel = () => page.locator('.pane:not([hidden]) .files-panel');
/// The visible panel: state, status line, cause, progress and its history.
const files = () => page.evaluate(() => {
  const p = document.querySelector('.pane:not([hidden]) .files-panel');
  if (!p) return null;
  return {
    state: p.dataset.state,
    cause: p.dataset.cause ?? '',
    status: p.querySelector('.files-status')?.textContent ?? '',
    progress: p.querySelector('.files-progress-text')?.textContent ?? '',
    events: Number(p.dataset.progressEvents ?? 0),
    seen: window.__filesProgress ?? [],
  };
});
async function waitFiles(what, pred) {
  return until(what, async () => {
    const f = await files();
    return f && pred(f) ? f : null;
  }).catch(async (e) => {
    const f = await files().catch(() => null);
    throw new Error(`${e.message}\n--- files panel ---\n${JSON.stringify({ ...f, seen: f?.seen?.slice(0, 50) }, null, 1)}\n---`);
  });
}
/// Records every progress text the panel shows from now on (a MutationObserver in the page).
const watchProgress = () => page.evaluate(() => {
  window.__filesProgress = [];
  window.__filesObserver?.disconnect();
  const el = document.querySelector('.pane:not([hidden]) .files-progress-text');
  const o = new MutationObserver(() => window.__filesProgress.push(el.textContent));
  o.observe(el, { childList: true, characterData: true, subtree: true });
  window.__filesObserver = o;
});
const partial = (seen) => seen.filter((t) => /\((\d+)%\)$/.test(t) && !/\((0|100)%\)$/.test(t));

await scenario('the Files button opens the panel', async () => {
  await devLogin(page, BASE, TOKEN);
  const i = await pick(page, MAIN);
  await waitOpen(page, i);
  await page.locator('.pane:not([hidden]) .files-open').click();
  await waitFiles('the panel', (f) => f.state === 'idle');
});

await scenario('upload of a binary file byte-exact with progress', async () => {
  await panel().locator('.files-file').setInputFiles({ name: 'blob.bin', mimeType: 'application/octet-stream', buffer: DATA });
  await panel().locator('.files-dir').fill(DIR);
  await watchProgress();
  await panel().locator('.files-upload').click();
  const f = await waitFiles('the upload done', (x) => x.state === 'done' || x.state === 'error');
  if (f.state !== 'done') throw new Error(`the upload failed: ${f.status}`);
  const path = join(DIR, 'blob.bin');
  if (f.status !== `Uploaded blob.bin (12.0 MiB) to ${path}`) throw new Error(`status: ${f.status}`);
  if (!f.progress.endsWith('(100%)')) throw new Error(`progress at the end: ${f.progress}`);
  // Its start, at least one upload progress event from the browser, and its end.
  if (f.events < 3) throw new Error(`progress updates: ${f.events}`);
  if (!f.seen.some((t) => t.endsWith('(0%)'))) throw new Error(`no start in ${JSON.stringify(f.seen)}`);
  console.log(`# upload progress seen: ${f.events} updates, ${partial(f.seen).length} partial (${partial(f.seen).slice(0, 5).join(', ')})`);
  const onDisk = readFileSync(path);
  if (!onDisk.equals(DATA)) throw new Error(`the file on the container's disk differs (${onDisk.length} bytes)`);
  await shot(page, 'files-uploaded');
});

await scenario('download of a binary file byte-exact with progress', async () => {
  const path = join(DIR, 'blob.bin');
  // The upload filled in its path.
  if ((await panel().locator('.files-path').inputValue()) !== path) throw new Error('the download path is not the upload\'s');
  await watchProgress();
  const [dl] = await Promise.all([page.waitForEvent('download'), panel().locator('.files-download').click()]);
  const f = await waitFiles('the download done', (x) => x.state === 'done');
  if (dl.suggestedFilename() !== 'blob.bin') throw new Error(`file name ${dl.suggestedFilename()}`);
  const saved = readFileSync(await dl.path());
  if (!saved.equals(DATA)) throw new Error(`the saved file differs (${saved.length} bytes)`);
  if (f.status !== `Downloaded ${path} (12.0 MiB)`) throw new Error(`status: ${f.status}`);
  // Read against Content-Length: the bar moves through the file, not only at its end.
  const parts = partial(f.seen);
  if (parts.length < 1) throw new Error(`no progress between 0 and 100%: ${JSON.stringify(f.seen.slice(0, 20))}`);
  if (!f.seen.at(-1)?.startsWith('12.0 MiB of 12.0 MiB')) throw new Error(`the last progress: ${f.seen.at(-1)}`);
  console.log(`# download progress seen: ${f.events} updates, ${parts.length} partial`);
  await shot(page, 'files-downloaded');
});

await scenario('a missing file is named in the error', async () => {
  await panel().locator('.files-path').fill(join(DIR, 'nope.bin'));
  await panel().locator('.files-download').click();
  await waitFiles('the error', (f) => f.state === 'error' && f.cause === 'not_found' &&
    f.status.startsWith(`there is no file ${join(DIR, 'nope.bin')}`));
});

await scenario('a container without tar says so, both ways', async () => {
  await panel().locator('.files-close').click();
  await until('the panel closed', async () => (await panel().count()) === 0);
  const i = await pick(page, NOTAR);
  await waitOpen(page, i);
  await page.locator('.pane:not([hidden]) .files-open').click();
  await waitFiles('the panel', (f) => f.state === 'idle');
  await panel().locator('.files-path').fill(join(DIR, 'blob.bin'));
  await panel().locator('.files-download').click();
  const want = 'container "notar" has no tar on its PATH';
  await waitFiles('the no-tar error', (f) => f.state === 'error' && f.cause === 'no_tar' && f.status.startsWith(want));
  await panel().locator('.files-file').setInputFiles({ name: 'small.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') });
  await panel().locator('.files-dir').fill(DIR);
  await panel().locator('.files-upload').click();
  await waitFiles('the no-tar error on upload', (f) => f.state === 'error' && f.cause === 'no_tar' && f.status.startsWith(want));
  if (existsSync(join(DIR, 'small.txt'))) throw new Error('a file was written');
  await shot(page, 'files-no-tar');
});

await scenario('no errors in the page console', async () => {
  // The refusals the page shows (404, 422) are logged by Chromium as failed loads.
  const relevant = errors.filter((e) => !/^Failed to load resource/.test(e));
  if (relevant.length) throw new Error(relevant.join('\n'));
});

await finish([ctx]);
