// The logs pane beside a terminal in real Chromium (gateway/web/src/logs.ts): the same pod's
// `pods/log` through the gateway, following new lines (the devcluster writes one every 200 ms
// while a client follows), search, timestamps, download, the previous instance (shop/db-0 has
// restarts) and the API's message when there is none. Run by tests/tests/ui_logs.rs with
//   PODGATE_URL          https://127.0.0.1:PORT of the demo gateway
//   PODGATE_SCREENSHOTS  directory for screenshots
//   PODGATE_ONLY         optional: a substring of the scenario names to run
// Prints "ok - NAME" / "FAIL - NAME: why" and "N passed, N failed".
import { readFileSync } from 'node:fs';
import { BASE, devLogin, finish, firstPage, hasLine, launch, pick, scenario, shot, type, until, view, waitOpen, waitText } from './driver.mjs';

const ADMIN = 'podgate-demo-admin';
const SHELL = { cluster: 'dev-east', namespace: 'default', pod: 'shell-0', container: 'main' };
const DB = { cluster: 'dev-east', namespace: 'shop', pod: 'db-0', container: 'db' };

const errors = [];
const ctx = await launch();
const page = await firstPage(ctx, errors);

const pane = () => page.locator('.pane:not([hidden]) .logs-pane');
/// The visible logs pane: its state, status line, lines and match count.
const logs = () => page.evaluate(() => {
  const p = document.querySelector('.pane:not([hidden]) .logs-pane');
  if (!p) return null;
  return {
    state: p.dataset.state,
    status: p.querySelector('.logs-status')?.textContent ?? '',
    lines: Array.from(p.querySelectorAll('.logs-line'), (l) => l.textContent.replace(/\u200b/g, '')),
    count: p.querySelector('.logs-count')?.textContent ?? '',
    marks: p.querySelectorAll('mark').length,
    current: p.querySelector('mark.current')?.textContent ?? '',
  };
});
async function waitLogs(what, pred) {
  return until(what, async () => {
    const l = await logs();
    return l && pred(l) ? l : null;
  }).catch(async (e) => {
    const l = await logs().catch(() => null);
    throw new Error(`${e.message}\n--- logs pane ---\n${JSON.stringify(l, null, 1)?.slice(0, 4000)}\n---`);
  });
}
const lineNo = (l) => Math.max(0, ...l.lines.map((t) => Number(/log line (\d+)$/.exec(t)?.[1] ?? 0)));

await scenario('logs pane following new lines', async () => {
  await devLogin(page, BASE, ADMIN);
  const i = await pick(page, SHELL);
  await waitOpen(page, i);
  await page.locator('.pane:not([hidden]) .logs-open').click();
  const first = await waitLogs('the existing lines', (l) => l.lines.includes('devcluster shell-0/main: log line 1'));
  const seen = lineNo(first);
  // Lines the container writes after the pane opened arrive while following.
  const later = await waitLogs('new lines while following', (l) => l.state === 'streaming' && lineNo(l) >= seen + 5);
  if (later.lines[0] !== 'devcluster shell-0/main: log line 1') throw new Error(`the first line: ${later.lines[0]}`);
  // The terminal still works beside it.
  if (!(await page.locator('.pane:not([hidden]) .xterm').isVisible())) throw new Error('the terminal is gone');
  await shot(page, 'logs-following');
});

await scenario('search highlights matches and jumps between them', async () => {
  await pane().locator('.logs-search').fill('log line 2');
  // "log line 2", "log line 20"…: at least one, the first current.
  const l = await waitLogs('highlighted matches', (x) => x.marks >= 1 && x.current === 'log line 2' && /^1\/\d+$/.test(x.count));
  if (l.marks > 1) {
    await pane().locator('.logs-next').click();
    await waitLogs('the second match current', (x) => /^2\/\d+$/.test(x.count));
    await pane().locator('.logs-prev').click();
    await waitLogs('back to the first', (x) => /^1\/\d+$/.test(x.count));
  }
  await pane().locator('.logs-search').fill('');
  await waitLogs('no highlights', (x) => x.marks === 0);
});

await scenario('timestamps put each line\'s time in front of it', async () => {
  await pane().locator('.logs-timestamps').check();
  await waitLogs('timestamped lines', (l) => l.lines.length >= 3 &&
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z devcluster shell-0\/main: log line 1$/.test(l.lines[0]));
  await pane().locator('.logs-timestamps').uncheck();
  await waitLogs('plain lines again', (l) => l.lines[0] === 'devcluster shell-0/main: log line 1');
});

await scenario('download produces the text', async () => {
  await waitLogs('a few lines', (l) => l.lines.length >= 4);
  const [dl] = await Promise.all([page.waitForEvent('download'), pane().locator('.logs-download').click()]);
  if (dl.suggestedFilename() !== 'shell-0_main.log') throw new Error(`file name ${dl.suggestedFilename()}`);
  const text = readFileSync(await dl.path(), 'utf8');
  const ls = text.split('\n');
  if (ls[0] !== 'devcluster shell-0/main: log line 1' || !ls.includes('devcluster shell-0/main: log line 4')) {
    throw new Error(`the downloaded text:\n${text.slice(0, 2000)}`);
  }
});

await scenario('previous on a pod without restarts shows the API\'s message', async () => {
  await pane().locator('.logs-previous').check();
  await waitLogs('the error', (l) => l.state === 'error' &&
    l.status === 'previous terminated container "main" in pod "shell-0" not found' && l.lines.length === 0);
  await shot(page, 'logs-no-previous');
  await pane().locator('.logs-previous').uncheck();
  await waitLogs('the current log again', (l) => l.state === 'streaming' && l.lines.includes('devcluster shell-0/main: log line 1'));
});

await scenario('full width shows the log instead of the terminal, and back', async () => {
  await pane().locator('.logs-wide').click();
  await until('the terminal hidden, the log across', async () =>
    !(await page.locator('.pane:not([hidden]) .term-body').isVisible()) &&
    (await pane().evaluate((p) => p.getBoundingClientRect().width)) >
      (await page.locator('.pane:not([hidden])').evaluate((p) => p.getBoundingClientRect().width)) * 0.9);
  await shot(page, 'logs-full-width');
  await pane().locator('.logs-wide').click();
  await until('the terminal back beside it', async () => await page.locator('.pane:not([hidden]) .xterm').isVisible());
  // The shell kept running: it still answers.
  const i = (await view(page)).active;
  await type(page, 'echo still-$((40+2))\r');
  await waitText(page, i, 'the shell answers', hasLine('still-42'));
});

await scenario('closing the pane ends it; the Logs button opens it again', async () => {
  await pane().locator('.logs-close').click();
  await until('the pane gone', async () => (await pane().count()) === 0);
  await page.locator('.pane:not([hidden]) .logs-open').click();
  await waitLogs('the pane again', (l) => l.lines.includes('devcluster shell-0/main: log line 1'));
  await page.locator('.pane:not([hidden]) .logs-open').click();
  await until('closed by its button', async () => (await pane().count()) === 0);
});

await scenario('previous on shop/db-0 shows the previous instance\'s log', async () => {
  const i = await pick(page, DB);
  await waitOpen(page, i);
  await page.locator('.pane:not([hidden]) .logs-open').click();
  await waitLogs('the current log', (l) => l.lines.includes('devcluster db-0/db: log line 1'));
  await pane().locator('.logs-previous').check();
  const l = await waitLogs('the previous instance', (x) => x.state === 'ended' &&
    x.lines.at(-1) === 'devcluster db-0/db (previous): exiting with code 1');
  const want = ['devcluster db-0/db (previous): log line 1', 'devcluster db-0/db (previous): log line 2',
    'devcluster db-0/db (previous): log line 3', 'devcluster db-0/db (previous): exiting with code 1'];
  if (JSON.stringify(l.lines) !== JSON.stringify(want)) throw new Error(`lines: ${JSON.stringify(l.lines)}`);
  await shot(page, 'logs-previous');
});

await scenario('no errors in the page console', async () => {
  // Answers the page expects (the 401 before login, the 400 for no previous instance) are
  // logged by Chromium as failed loads; anything else is an error.
  const relevant = errors.filter((e) => !/^Failed to load resource/.test(e));
  if (relevant.length) throw new Error(relevant.join('\n'));
});

await finish([ctx]);
