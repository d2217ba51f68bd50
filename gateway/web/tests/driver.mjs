// What a browser scenario file needs (every scenario file imports it, ui.mjs too): waits
// on conditions with deadlines, Chromium contexts of their own, the demo login, the pickers,
// typing, the terminal's buffer through `window.podgate.view()`, and scenario bookkeeping
// ("ok - NAME" / "FAIL - NAME: why", "N passed, N failed").
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BASE = process.env.PODGATE_URL;
export const SHOTS = process.env.PODGATE_SCREENSHOTS || join(process.cwd(), 'ui-screenshots');
export const ONLY = process.env.PODGATE_ONLY || '';
export const GROUP = process.env.PODGATE_GROUP || 'main';
const CHROMIUM = process.env.PODGATE_CHROMIUM || '/usr/bin/chromium';
if (!BASE) {
  console.error('PODGATE_URL is not set');
  process.exit(2);
}
mkdirSync(SHOTS, { recursive: true });

// Generous: a fresh shell runs the machine's rc files. Waits end as soon as their condition holds.
export const WAIT_MS = 90_000;

/// Polls `fn` (async) until it returns a truthy value or the deadline passes.
export async function until(what, fn, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${String(last)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const view = (page) => page.evaluate(() => window.podgate.view());
export const tab = async (page, i) => (await view(page)).tabs[i];
export const lines = (text) => text.split('\n').map((l) => l.trimEnd());
/// A screen's lines without the empty rows below the last written one.
export function screen(text) {
  const ls = lines(text);
  while (ls.length && ls[ls.length - 1] === '') ls.pop();
  return ls;
}
export const hasLine = (want) => (text) => lines(text).includes(want);

export async function waitText(page, i, what, pred, ms) {
  return until(`tab ${i}: ${what}`, async () => {
    const t = await tab(page, i);
    return t && pred(t.text, t) ? t : null;
  }, ms).catch(async (e) => {
    const t = await tab(page, i).catch(() => null);
    throw new Error(`${e.message}\n--- terminal ${i} ---\n${t ? t.text.trimEnd() : '(no tab)'}\n---`);
  });
}

export async function waitOpen(page, i) {
  await until(`tab ${i} open`, async () => (await tab(page, i))?.state === 'open');
}

let readyCount = 0;
/// Waits until tab `i`'s shell runs commands (its rc files are done).
export async function ready(page, i) {
  await waitOpen(page, i);
  const marker = `ready-${++readyCount}`;
  await page.locator('.tab-select').nth(i).click();
  await type(page, `echo ${marker}\r`);
  await waitText(page, i, marker, hasLine(marker), 90_000);
}

/// Types into the active terminal (xterm's hidden textarea has the focus).
export async function type(page, text) {
  await page.locator('.pane:not([hidden]) .xterm-helper-textarea').focus();
  await page.keyboard.type(text);
}

/// Presses a key in the active terminal, as `type` types: whatever had the focus (a resume
/// redraws the pane), the key goes to the shell.
export async function press(page, key) {
  await page.locator('.pane:not([hidden]) .xterm-helper-textarea').focus();
  await page.keyboard.press(key);
}

export async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
}

const browserDirs = [];
/// A browser of its own (its own cookies): one per person.
export async function launch() {
  const dir = mkdtempSync(join(tmpdir(), 'podgate-ui-chromium-'));
  browserDirs.push(dir);
  return chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors: true,
    viewport: { width: 1100, height: 700 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/// The page of a context, with its console errors collected into `errors`.
export async function firstPage(ctx, errors) {
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  watchErrors(page, errors);
  return page;
}

export function watchErrors(page, errors) {
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
}

export async function devLogin(page, url, token) {
  await page.goto(url);
  await page.locator('#login-token').fill(token);
  await page.locator('#login-dev').click();
  await until('logged in', async () => (await page.locator('.who').count()) > 0);
}

/// Opens a terminal with the pickers; returns its tab index.
export async function pick(page, { cluster, namespace, pod, container }) {
  if (await page.locator('#pick-cluster').isHidden()) await page.locator('#tab-new').click();
  // On a timeout, say what the picker showed instead (a note such as "Pods could not be
  // listed (...)" or its error), so a failure names its cause.
  const opt = (sel, value) => until(`${sel} offers ${value}`, async () =>
    (await page.locator(`${sel} option[value="${value}"]`).count()) > 0).catch(async (e) => {
    const shown = await page.locator('.picker .note, .picker .error').allInnerTexts().catch(() => []);
    const options = await page.locator(`${sel} option`).allInnerTexts().catch(() => []);
    throw new Error(`${e.message}; options: ${JSON.stringify(options)}; picker says: ${JSON.stringify(shown.filter((t) => t.trim()))}`);
  });
  // The picker shows one page of clusters: once it is there, search for one that is not on it.
  await until('the cluster list', async () => (await page.locator('#pick-cluster option:not([value=""])').count()) > 0);
  if ((await page.locator(`#pick-cluster option[value="${cluster}"]`).count()) === 0) {
    await page.locator('#pick-cluster-search').fill(cluster);
  }
  await opt('#pick-cluster', cluster);
  await page.locator('#pick-cluster').selectOption(cluster);
  await opt('#pick-namespace', namespace);
  await page.locator('#pick-namespace').selectOption(namespace);
  await opt('#pick-pod', pod);
  await page.locator('#pick-pod').selectOption(pod);
  if (container) {
    await opt('#pick-container', container);
    await page.locator('#pick-container').selectOption(container);
  }
  const before = (await view(page)).tabs.length;
  await page.locator('#pick-open').click();
  // The picker asks the cluster first (its pre-flight): a new tab, or its refusal, follows.
  await until('a new terminal or the picker\'s refusal', async () =>
    (await view(page)).tabs.length > before || (await page.locator('.picker .error').innerText()) !== '');
  return (await view(page)).active;
}

/// A request from the page, as its scripts make them (the session cookie, same origin).
export async function call(page, method, path) {
  return page.evaluate(async ([m, p]) => {
    const r = await fetch(p, { method: m, credentials: 'same-origin', headers: { Accept: 'application/json' } });
    return { code: r.status, body: await r.text() };
  }, [method, path]);
}

const results = [];
export async function scenario(name, fn) {
  if (ONLY && !name.includes(ONLY)) return;
  const started = Date.now();
  try {
    await fn();
    results.push([name, null]);
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    results.push([name, e]);
    console.log(`FAIL - ${name}: ${e && e.stack ? e.stack : e}`);
  }
}

/// Prints the tally, closes the browsers and exits non-zero when a scenario failed.
export async function finish(contexts) {
  for (const c of contexts) await c.close().catch(() => {});
  for (const d of browserDirs) rmSync(d, { recursive: true, force: true });
  const failed = results.filter(([, e]) => e).length;
  console.log(`${results.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
