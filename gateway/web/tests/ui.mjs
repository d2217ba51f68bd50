// The web UI in real Chromium (Debian's /usr/bin/chromium driven by playwright-core), against
// a running `podgate demo` gateway. Run by tests/tests/ui.rs, which starts the gateway and
// passes:
//   PODGATE_URL          https://127.0.0.1:PORT of the gateway
//   PODGATE_SCREENSHOTS  directory for screenshots (under the cargo target dir)
//   PODGATE_GROUP        which scenarios: "main" (default; the demo as it starts),
//                        "unreachable" (dev-west stopped), or "limits" (a gateway with a 3 s
//                        idle timeout, 12 s maximum duration and one session per user), or
//                        "oidc" (a gateway whose login is OIDC at the test provider; its
//                        login form takes PODGATE_OIDC_USER / PODGATE_OIDC_PASSWORD; cluster
//                        id "old"), or "fleet" (the demo with 300 more clusters: the
//                        cluster picker pages and searches), or "preflight" (the demo: the
//                        picker asks the cluster before it opens a shell)
//   PODGATE_ONLY         optional: a substring of the scenario names to run
// Prints "ok - NAME" or "FAIL - NAME: why" per scenario and "N passed, N failed" at the end;
// exits 1 when any failed. Every wait polls a condition with a deadline.
import net from 'node:net';
import {
  BASE, GROUP, devLogin, finish, firstPage, hasLine, launch, lines, pick, ready, scenario, shot, tab, type,
  until, view, waitOpen, waitText, WAIT_MS,
} from './driver.mjs';

const activeTab = async (page) => {
  const v = await view(page);
  return v.tabs[v.active];
};

/// A TCP forwarder to the gateway whose connections the test can cut (a dropped network).
function forwarder(target) {
  const { hostname, port } = new URL(target);
  const sockets = new Set();
  const server = net.createServer((client) => {
    const up = net.connect(Number(port), hostname);
    for (const s of [client, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(up);
    up.pipe(client);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `https://127.0.0.1:${server.address().port}`,
    cut: () => { for (const s of sockets) s.destroy(); },
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(r); }),
  })));
}

// ---------------------------------------------------------------------------------------

const admin = await launch();
const consoleErrors = [];
const page = await firstPage(admin, consoleErrors);

async function mainGroup() {
  await scenario('serves the page with a strict CSP', async () => {
    const resp = await page.goto(BASE);
    const csp = resp.headers()['content-security-policy'] || '';
    if (!csp.includes("default-src 'self'") || !csp.includes("script-src 'self'")) throw new Error(`CSP: ${csp}`);
    await until('the login screen', async () => (await page.locator('#login-token').count()) > 0);
    await shot(page, 'login');
  });

  await scenario('a wrong demo token is refused with a message', async () => {
    await page.locator('#login-token').fill('not-a-token');
    await page.locator('#login-dev').click();
    await until('the refusal', async () => /not valid/.test(await page.locator('main.login .error').innerText()));
  });

  await scenario('nothing is preselected: Open waits for a pod the person chose', async () => {
    await devLogin(page, BASE, 'podgate-demo-admin');
    const open = page.locator('#pick-open');
    await until('the pods of the first namespace', async () => (await page.locator('#pick-pod option[value="shell-0"]').count()) > 0);
    if ((await page.locator('#pick-pod').inputValue()) !== '') throw new Error(`a pod is preselected: ${await page.locator('#pick-pod').inputValue()}`);
    if (!(await open.isDisabled())) throw new Error('Open is offered before a pod is chosen');
    if (await page.locator('#pick-recent li').count()) throw new Error('a fresh browser lists recent pods');
    await page.locator('#pick-pod').selectOption('shell-0');
    await until('Open offered', async () => open.isEnabled());
    await page.locator('#pick-pod').selectOption('');
    await until('Open withdrawn', async () => open.isDisabled());
    // Another namespace: its pods load, and again none is chosen.
    await page.locator('#pick-namespace').selectOption('shop');
    await until('the pods of shop', async () => (await page.locator('#pick-pod option[value="web-0"]').count()) > 0);
    if ((await page.locator('#pick-pod').inputValue()) !== '' || !(await open.isDisabled())) throw new Error('a pod is preselected in shop');
    if ((await view(page)).tabs.length !== 0) throw new Error('a terminal opened');
  });

  let shellTab = -1;
  await scenario('demo login, open shell-0, echo hello', async () => {
    if (!(await page.locator('.who').count())) await devLogin(page, BASE, 'podgate-demo-admin');
    await shot(page, 'pickers');
    shellTab = await pick(page, { cluster: 'dev-east', namespace: 'default', pod: 'shell-0' });
    await waitOpen(page, shellTab);
    await type(page, 'echo hello\r');
    await waitText(page, shellTab, 'hello', hasLine('hello'));
    const hash = await page.evaluate(() => location.hash);
    if (hash !== '#/clusters/dev-east/namespaces/default/pods/shell-0?container=main') throw new Error(`URL does not follow the tab: ${hash}`);
    await shot(page, 'shell-0');
  });

  await scenario('the first size reaches the pod before the shell draws, and resizes follow', async () => {
    const sizeIs = async (marker) => {
      const t = await tab(page, shellTab);
      const want = `${t.rows} ${t.cols}`;
      await type(page, `stty size; echo ${marker}\r`);
      const got = await waitText(page, shellTab, `${marker}`, (text) => hasLine(marker)(text));
      const ls = lines(got.text);
      const answer = ls[ls.lastIndexOf(marker) - 1];
      if (answer !== want) throw new Error(`stty size said ${answer}, the terminal is ${want}`);
      return want;
    };
    const first = await sizeIs('size-one');
    await page.setViewportSize({ width: 720, height: 420 });
    await until('a smaller terminal', async () => `${(await tab(page, shellTab)).rows} ${(await tab(page, shellTab)).cols}` !== first);
    await until('the resize sent', async () => {
      const t = await tab(page, shellTab);
      const last = t.stats.resizes[t.stats.resizes.length - 1];
      return last && last.cols === t.cols && last.rows === t.rows;
    });
    const second = await sizeIs('size-two');
    if (second === first) throw new Error('the size did not change');
    await shot(page, 'resized');
    await page.setViewportSize({ width: 1100, height: 700 });
  });

  await scenario('multi-byte UTF-8 split across frames renders', async () => {
    // Each printf is its own write, so each piece arrives in its own frame, cut mid-character.
    await type(page, "printf 'caf\\303'; sleep 0.3; printf '\\251 \\342\\202'; sleep 0.3; printf '\\254 \\360\\237'; sleep 0.3; printf '\\230\\200 done\\n'\r");
    await waitText(page, shellTab, 'café € 😀 done', (text) => lines(text).some((l) => l.includes('café € 😀 done')));
    const t = await tab(page, shellTab);
    if (t.stats.splitFrames < 1) throw new Error('no frame ended inside a character: the test proved nothing');
    if (t.text.includes('\ufffd')) throw new Error('a replacement character was drawn');
  });

  await scenario('exit 3 shows code 3, and Enter starts a new session', async () => {
    await type(page, 'exit 3\r');
    await waitText(page, shellTab, 'the exit code', (text) => text.includes('process exited with code 3'));
    await until('ended', async () => (await tab(page, shellTab)).state === 'ended');
    await shot(page, 'exit-3');
    await type(page, '\r');
    await until('a second session', async () => {
      const t = await tab(page, shellTab);
      return t.state === 'open' && t.stats.sessions === 2;
    });
    await type(page, 'echo again-$((40+2))\r');
    await waitText(page, shellTab, 'again-42', hasLine('again-42'));
  });

  await scenario('copy on select puts the selection on the clipboard', async () => {
    await admin.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
    await type(page, 'echo copyme-$((6*7))\r');
    await waitText(page, shellTab, 'copyme-42', hasLine('copyme-42'));
    const row = page.locator('.pane:not([hidden]) .xterm-rows > div').filter({ hasText: /^copyme-42\s*$/ });
    const box = await row.last().boundingBox();
    // The rows lie under xterm's screen layer, which takes the mouse: click there.
    await page.mouse.dblclick(box.x + 12, box.y + box.height / 2);
    await until('the clipboard', async () => (await page.evaluate(() => navigator.clipboard.readText())) === 'copyme-42');
  });

  await scenario('Ctrl+Shift+C copies the selection and Ctrl+Shift+V pastes', async () => {
    await page.evaluate(() => navigator.clipboard.writeText('echo pasted-$((3*3))'));
    await page.locator('.pane:not([hidden]) .xterm-helper-textarea').focus();
    await page.keyboard.press('Control+Shift+V');
    await page.keyboard.press('Enter');
    await waitText(page, shellTab, 'pasted-9', hasLine('pasted-9'));
    const row = page.locator('.pane:not([hidden]) .xterm-rows > div').filter({ hasText: /^pasted-9\s*$/ });
    const box = await row.last().boundingBox();
    await page.mouse.dblclick(box.x + 12, box.y + box.height / 2);
    const clip = () => page.evaluate(() => navigator.clipboard.readText());
    await until('copy on select', async () => (await clip()) === 'pasted-9');
    // Cleared, so only the key can put the selection back.
    await page.evaluate(() => navigator.clipboard.writeText('nothing'));
    await until('the clipboard cleared', async () => (await clip()) === 'nothing');
    await page.locator('.pane:not([hidden]) .xterm-helper-textarea').focus();
    await page.keyboard.press('Control+Shift+C');
    await until('the copy', async () => (await clip()) === 'pasted-9');
  });

  await scenario('links in the output are clickable', async () => {
    await type(page, 'echo https://example.invalid/podgate-$((1+1))\r');
    await waitText(page, shellTab, 'the link', hasLine('https://example.invalid/podgate-2'));
    const row = page.locator('.pane:not([hidden]) .xterm-rows > div').filter({ hasText: /^https:\/\/example\.invalid\/podgate-2\s*$/ });
    const box = await row.last().boundingBox();
    await page.mouse.move(box.x + 40, box.y + box.height / 2);
    await until('the pointer over the link', async () => (await page.locator('.pane:not([hidden]) .xterm-screen.xterm-cursor-pointer, .pane:not([hidden]) .xterm.xterm-cursor-pointer').count()) > 0);
    // The link opens in a new window (the address does not resolve; asking for it is enough).
    const asked = admin.waitForEvent('request', { predicate: (r) => r.url().startsWith('https://example.invalid/podgate-2'), timeout: WAIT_MS });
    const popup = page.waitForEvent('popup', { timeout: WAIT_MS });
    await page.mouse.click(box.x + 40, box.y + box.height / 2);
    await asked;
    await (await popup).close();
  });

  await scenario('two tabs work at once', async () => {
    const second = await pick(page, { cluster: 'dev-east', namespace: 'default', pod: 'multi-0', container: 'sidecar' });
    if (second === shellTab) throw new Error('no new tab');
    // The container picker listed the init and ephemeral containers too, with their state.
    const options = await page.locator('#pick-container option').allInnerTexts();
    if (!options.some((o) => /^init \[init\] — terminated/.test(o)) || !options.some((o) => /^app — running/.test(o))
      || !options.some((o) => /^debugger \[ephemeral\] — running/.test(o))) {
      throw new Error(`container choices: ${JSON.stringify(options)}`);
    }
    await waitOpen(page, second);
    await type(page, 'echo two-$((1+1))\r');
    await waitText(page, second, 'two-2', hasLine('two-2'));
    const hash = await page.evaluate(() => location.hash);
    if (!hash.includes('/pods/multi-0?container=sidecar')) throw new Error(`URL does not follow the tab: ${hash}`);
    await page.locator('.tab-select').nth(shellTab).click();
    await type(page, 'echo one-$((0+1))\r');
    await waitText(page, shellTab, 'one-1', hasLine('one-1'));
    const [a, b] = [await tab(page, shellTab), await tab(page, second)];
    if (a.state !== 'open' || b.state !== 'open') throw new Error(`both should be open: ${a.state} ${b.state}`);
    if (lines(b.text).includes('one-1')) throw new Error("tab 1's output reached tab 2");
    await shot(page, 'two-tabs');
  });

  await scenario('tab titles start with the cluster, then pod and container; the full path heads the terminal', async () => {
    const titles = await page.locator('.tab-select').allInnerTexts();
    const want = ['dev-east › shell-0/main', 'dev-east › multi-0/sidecar'];
    if (JSON.stringify(titles.map((t) => t.trim())) !== JSON.stringify(want)) throw new Error(`tab titles: ${JSON.stringify(titles)}`);
    const v = await view(page);
    if (v.tabs.map((t) => t.title).join('|') !== want.join('|')) throw new Error(`titles: ${v.tabs.map((t) => t.title)}`);
    await page.locator('.tab-select').nth(1).click();
    await until('the full path over the active terminal', async () =>
      (await page.locator('.pane:not([hidden]) .term-path').innerText()) === 'dev-east / default / multi-0 / sidecar');
    if (await page.locator('.pane.prod, .tab.prod').count()) throw new Error('dev-east is marked as production');
    await page.locator('.tab-select').nth(shellTab).click();
    await until('the first path', async () =>
      (await page.locator('.pane:not([hidden]) .term-path').innerText()) === 'dev-east / default / shell-0 / main');
  });

  await scenario('search, theme toggle remembered', async () => {
    await page.locator('.pane:not([hidden]) .xterm-helper-textarea').focus();
    await page.keyboard.press('Control+Shift+F');
    await until('the search bar', async () => page.locator('.pane:not([hidden]) .search input').isVisible());
    await page.keyboard.press('Escape');
    const before = await page.evaluate(() => document.documentElement.dataset.theme);
    await page.locator('#theme-toggle').click();
    const after = await page.evaluate(() => document.documentElement.dataset.theme);
    if (before === after) throw new Error('the theme did not change');
    await shot(page, `theme-${after}`);
    await page.reload();
    await until('the theme kept', async () => (await page.evaluate(() => document.documentElement.dataset.theme)) === after);
    await page.locator('#theme-toggle').click();
    // The reload reopened the tab in the URL: let its shell start before the page is left
    // (a shell killed while starting can leave its rc files' locks behind).
    await ready(page, 0);
  });

  await scenario('recently used pods are offered first after a reload', async () => {
    await page.goto('about:blank');
    await page.goto(BASE + '/#/');
    await until('the recent pods', async () => (await page.locator('#pick-recent li').count()) >= 2);
    const recent = (await page.locator('#pick-recent li').allInnerTexts()).map((t) => t.trim());
    // shell-0 was opened last (the reload before reopened it), multi-0 before.
    if (!recent[0].startsWith('dev-east › shell-0/main') || !recent[1].startsWith('dev-east › multi-0/sidecar')) {
      throw new Error(`recent: ${JSON.stringify(recent)}`);
    }
    if ((await view(page)).tabs.length !== 0) throw new Error('a terminal opened by itself');
    // In the pod list of dev-east/default too, first, and still none chosen.
    await page.locator('#pick-cluster').selectOption('dev-east');
    await page.locator('#pick-namespace').selectOption('default');
    await until('the recently used group', async () => (await page.locator('#pick-pod optgroup[label="Recently used"] option').count()) === 2);
    const first = await page.locator('#pick-pod option').evaluateAll((os) => os.map((o) => o.value));
    if (first[0] !== '' || first[1] !== 'shell-0' || first[2] !== 'multi-0') throw new Error(`pod options: ${first.slice(0, 4)}`);
    if ((await page.locator('#pick-pod').inputValue()) !== '') throw new Error('a pod is preselected');
    // One click on a recent pod opens it, container included.
    await page.locator('#pick-recent button', { hasText: 'multi-0/sidecar' }).click();
    await until('the tab', async () => (await view(page)).tabs.length === 1);
    const t = await activeTab(page);
    if (t.target.pod !== 'multi-0' || t.target.container !== 'sidecar') throw new Error(JSON.stringify(t.target));
    await ready(page, 0);
  });

  await scenario('font size control changes the terminal\'s font and survives a reload', async () => {
    const before = await activeTab(page);
    if (before.fontSize !== 14) throw new Error(`font ${before.fontSize}`);
    const rowsFont = () => page.locator('.pane:not([hidden]) .xterm-rows').evaluate((e) => getComputedStyle(e).fontSize);
    if ((await rowsFont()) !== '14px') throw new Error(`rows drawn at ${await rowsFont()}`);
    await page.locator('#font-larger').click();
    await page.locator('#font-larger').click();
    await until('18px', async () => (await activeTab(page)).fontSize === 18 && (await rowsFont()) === '18px');
    // Bigger cells: fewer of them, and the pod is told.
    await until('a smaller grid sent to the pod', async () => {
      const t = await activeTab(page);
      const last = t.stats.resizes[t.stats.resizes.length - 1];
      return t.cols < before.cols && t.rows < before.rows && last && last.cols === t.cols && last.rows === t.rows;
    });
    if ((await page.locator('#font-size').innerText()) !== '18px') throw new Error(await page.locator('#font-size').innerText());
    await shot(page, 'font-18');
    await page.reload();
    await until('the tab again', async () => (await view(page)).tabs.length === 1);
    await until('18px kept', async () => (await activeTab(page)).fontSize === 18 && (await rowsFont()) === '18px');
    await ready(page, 0);
    await page.locator('#font-smaller').click();
    await until('16px', async () => (await activeTab(page)).fontSize === 16);
    await page.locator('#font-smaller').click();
    await until('back to 14px', async () => (await activeTab(page)).fontSize === 14 && (await rowsFont()) === '14px');
  });

  await scenario('copy and paste keys are documented in the page, and Shift+Insert / Ctrl+Insert work', async () => {
    const help = page.locator('#keys-help');
    if (await help.isVisible()) throw new Error('the keys are shown before they are asked for');
    await page.locator('#keys-toggle').click();
    await until('the keys', async () => help.isVisible());
    const text = await help.innerText();
    for (const k of ['Ctrl+Shift+C', 'Ctrl+Shift+V', 'Ctrl+Insert', 'Shift+Insert', 'Ctrl+Shift+F', 'copy on select']) {
      if (!text.includes(k)) throw new Error(`${k} is not listed:\n${text}`);
    }
    await shot(page, 'keys');
    await page.keyboard.press('Escape');
    await until('closed', async () => !(await help.isVisible()));
    // What is listed works: Shift+Insert pastes, Ctrl+Insert copies the selection.
    const i = (await view(page)).active;
    const clip = () => page.evaluate(() => navigator.clipboard.readText());
    await page.evaluate(() => navigator.clipboard.writeText('echo ins-$((5*5))'));
    await page.locator('.pane:not([hidden]) .xterm-helper-textarea').focus();
    await page.keyboard.press('Shift+Insert');
    await page.keyboard.press('Enter');
    await waitText(page, i, 'ins-25', hasLine('ins-25'));
    const row = page.locator('.pane:not([hidden]) .xterm-rows > div').filter({ hasText: /^ins-25\s*$/ });
    const box = await row.last().boundingBox();
    await page.mouse.dblclick(box.x + 12, box.y + box.height / 2);
    await until('copy on select', async () => (await clip()) === 'ins-25');
    await page.evaluate(() => navigator.clipboard.writeText('nothing'));
    await until('the clipboard cleared', async () => (await clip()) === 'nothing');
    await page.locator('.pane:not([hidden]) .xterm-helper-textarea').focus();
    await page.keyboard.press('Control+Insert');
    await until('Ctrl+Insert copied', async () => (await clip()) === 'ins-25');
  });

  await scenario('a production cluster is marked in the picker, the tab and the frame at 360 px', async () => {
    const p = await admin.newPage();
    try {
      await p.setViewportSize({ width: 360, height: 640 });
      await p.goto(BASE + '/#/');
      await until('prod-eu listed', async () => (await p.locator('#pick-cluster option[value="prod-eu"]').count()) > 0);
      await p.locator('#pick-cluster').selectOption('dev-east');
      if (await p.locator('#pick-cluster-env').isVisible()) throw new Error('dev-east is marked');
      await p.locator('#pick-cluster').selectOption('prod-eu');
      const env = p.locator('#pick-cluster-env');
      await until('the picker\'s mark', async () => (await env.isVisible()) && /PRODUCTION/.test(await env.innerText()));
      const red = await env.evaluate((e) => getComputedStyle(e).backgroundColor);
      if (!/^rgb\((19[0-9]|2[0-9][0-9]), \d{1,2}, \d{1,2}\)$/.test(red)) throw new Error(`the mark is not red: ${red}`);
      await shot(p, 'production-picker-360');
      const i = await pick(p, { cluster: 'prod-eu', namespace: 'default', pod: 'shell-0' });
      await waitOpen(p, i);
      await until('the tab marked', async () => (await tab(p, i)).production);
      const t = await tab(p, i);
      if (!t.title.startsWith('prod-eu › shell-0')) throw new Error(`title ${t.title}`);
      const badge = p.locator('.tab.prod .env-badge');
      await until('the tab badge', async () => (await badge.count()) === 1 && (await badge.innerText()) === 'PROD');
      const bb = await badge.boundingBox();
      if (!bb || bb.x < 0 || bb.x + bb.width > 360) throw new Error(`the tab's mark is off screen: ${JSON.stringify(bb)}`);
      const pane = p.locator('.pane.prod:not([hidden])');
      if ((await pane.count()) !== 1) throw new Error('the terminal has no production frame');
      const border = await pane.evaluate((e) => { const s = getComputedStyle(e); return [s.borderTopWidth, s.borderTopColor]; });
      if (border[0] !== '3px' || !/^rgb\((19[0-9]|2[0-9][0-9]), \d{1,2}, \d{1,2}\)$/.test(border[1])) throw new Error(`frame: ${border}`);
      const head = await pane.locator('.term-head').innerText();
      if (!head.includes('PRODUCTION') || !head.includes('Production EU (prod-eu) / default / shell-0 / main')) throw new Error(`header: ${head}`);
      const hb = await pane.locator('.term-head .env-badge').boundingBox();
      if (!hb || hb.x + hb.width > 360) throw new Error(`the header's mark is off screen: ${JSON.stringify(hb)}`);
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      if (overflow > 0) throw new Error(`the page scrolls sideways by ${overflow}px`);
      await ready(p, i);
      await type(p, 'echo "on-$HOSTNAME"\r');
      await waitText(p, i, 'on-shell-0', hasLine('on-shell-0'));
      await shot(p, 'production-360');
      // Offered among the recent pods, marked there too.
      await p.locator('#tab-new').click();
      const recent = p.locator('#pick-recent button.prod');
      await until('the recent production pod', async () => (await recent.count()) === 1 && /PROD/.test(await recent.innerText()));
    } finally {
      await p.close();
    }
  });

  await scenario('a deep link opens the right pod', async () => {
    const link = '#/clusters/dev-west/namespaces/shop/pods/web-0?container=web';
    await page.goto('about:blank');
    await page.goto(BASE + '/' + link);
    await until('the tab', async () => (await view(page)).tabs.length === 1);
    const t = await activeTab(page);
    if (t.target.cluster !== 'dev-west' || t.target.pod !== 'web-0' || t.target.container !== 'web') throw new Error(JSON.stringify(t.target));
    await waitOpen(page, 0);
    await type(page, 'echo "$HOSTNAME"\r');
    await waitText(page, 0, 'web-0', hasLine('web-0'));
    if ((await page.evaluate(() => location.hash)) !== link) throw new Error('the URL changed');
  });

  await scenario('a command as its first act sees the window size, then exits 0', async () => {
    await page.goto('about:blank');
    await page.goto(BASE + '/#/clusters/dev-east/namespaces/default/pods/shell-0?container=main&command=stty&command=size');
    await until('the tab', async () => (await view(page)).tabs.length === 1);
    const t = await waitText(page, 0, 'the exit', (text) => text.includes('process exited with code 0'));
    if (!hasLine(`${t.rows} ${t.cols}`)(t.text)) throw new Error(`stty size did not say ${t.rows} ${t.cols}:\n${t.text}`);
  });

  await scenario('narrow window at 200% zoom stays usable', async () => {
    const narrow = await admin.newPage();
    await narrow.setViewportSize({ width: 360, height: 640 });
    // 200% zoom of a 720 px wide window is a 360 CSS px viewport at device scale 2.
    const cdp = await admin.newCDPSession(narrow);
    await cdp.send('Emulation.setDeviceMetricsOverride', { width: 360, height: 640, deviceScaleFactor: 2, mobile: false });
    await narrow.goto(BASE + '/#/clusters/dev-east/namespaces/default/pods/shell-0?container=main');
    await waitOpen(narrow, 0);
    const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    if (overflow > 0) throw new Error(`the page scrolls sideways by ${overflow}px`);
    await type(narrow, 'stty size\r');
    const t = await tab(narrow, 0);
    await waitText(narrow, 0, 'the narrow size', hasLine(`${t.rows} ${t.cols}`));
    await shot(narrow, 'narrow-200pct');
    await narrow.locator('#tab-new').click();
    await shot(narrow, 'narrow-200pct-pickers');
    await narrow.close();
  });

  await scenario('a dropped connection resumes the same session by itself', async () => {
    const fwd = await forwarder(BASE);
    const p = await admin.newPage();
    try {
      await p.goto(fwd.url + '/#/clusters/dev-east/namespaces/default/pods/shell-0?container=main');
      await waitOpen(p, 0);
      await type(p, 'echo before-drop-$$\r');
      const before = await waitText(p, 0, 'before-drop', (text) => /^before-drop-\d+$/m.test(text));
      const pid = /^before-drop-(\d+)$/m.exec(before.text)[1];
      if (!before.stats.resumable) throw new Error('podgate sent no hello: the session cannot be resumed');
      fwd.cut();
      // The page reconnects by itself (docs/protocol.md, resume): the same session, no new one.
      await until('resumed', async () => {
        const t = await tab(p, 0);
        return t.state === 'open' && t.stats.resumes === 1 && t.stats.sessions === 1;
      });
      await type(p, 'echo after-drop-$$\r');
      await waitText(p, 0, 'after-drop, the same shell', hasLine(`after-drop-${pid}`));
      if ((await tab(p, 0)).text.includes('Connection lost')) throw new Error('the drop was shown as an ending');
    } finally {
      await p.close();
      await fwd.close();
    }
  });

  await scenario('an open terminal keeps the login alive; none keeps nothing; a lost login shows', async () => {
    // A browser of its own with a fake clock (time flows, and the test jumps it ahead).
    const ctx = await launch();
    try {
      await ctx.clock.install();
      const p = ctx.pages()[0] ?? (await ctx.newPage());
      const asked = [];
      p.on('request', (r) => { if (new URL(r.url()).pathname === '/podgate/whoami') asked.push(r); });
      const link = '#/clusters/dev-east/namespaces/default/pods/shell-0?container=main';
      await devLogin(p, BASE + '/' + link, 'podgate-demo-admin');
      await until('the tab', async () => (await view(p)).tabs.length === 1);
      await waitOpen(p, 0);
      const { keepalive } = await view(p);
      if (!keepalive.running) throw new Error('no keepalive with a terminal open');
      if (keepalive.intervalMs > 30_000) throw new Error(`keepalive every ${keepalive.intervalMs} ms`);
      const before = asked.length;
      await p.clock.fastForward(keepalive.intervalMs + 1000);
      await until('a whoami request', async () => asked.length > before);
      const resp = await asked[asked.length - 1].response();
      if (resp?.status() !== 200) throw new Error(`whoami answered ${resp?.status()}`);
      // No terminal: no timer, no request.
      await p.locator('.tab-close').first().click();
      await until('the keepalive stopped', async () => !(await view(p)).keepalive.running);
      const quiet = asked.length;
      await p.clock.fastForward(5 * keepalive.intervalMs);
      await new Promise((r) => setTimeout(r, 500));
      if (asked.length !== quiet) throw new Error(`${asked.length - quiet} whoami requests with no terminal open`);
      // A login lost while a shell runs: the header says so, the shell runs on.
      await p.evaluate((l) => { location.hash = l; }, link);
      await until('the tab again', async () => (await view(p)).tabs.length === 1);
      await waitOpen(p, 0);
      await ctx.clearCookies();
      await p.clock.fastForward(keepalive.intervalMs + 1000);
      await until('Not logged in in the header', async () => (await p.locator('.who').innerText()) === 'Not logged in');
      if ((await view(p)).keepalive.running) throw new Error('still polling after a 401');
      if ((await tab(p, 0)).state !== 'open') throw new Error('the shell should run on until the gateway ends it');
      await shot(p, 'login-lost');
    } finally {
      await ctx.close();
    }
  });

  await scenario('bob on a pod he may not exec reads Forbidden', async () => {
    const bob = await launch();
    try {
      const p = bob.pages()[0] ?? (await bob.newPage());
      await devLogin(p, BASE + '/#/clusters/dev-east/namespaces/default/pods/shell-0', 'podgate-demo-bob');
      await until('the tab', async () => (await view(p)).tabs.length === 1);
      await waitText(p, 0, 'Forbidden', (text) => text.includes('Forbidden') && text.includes('pods/exec'));
      await shot(p, 'bob-forbidden');
    } finally {
      await bob.close();
    }
  });

  await scenario('a missing pod reads Not found', async () => {
    await page.goto('about:blank');
    await page.goto(BASE + '/#/clusters/dev-east/namespaces/default/pods/nope-0');
    await waitText(page, 0, 'Not found', (text) => text.includes('Not found') && text.includes('nope-0'));
  });

  await scenario('a missing container reads Container not found', async () => {
    await page.goto('about:blank');
    await page.goto(BASE + '/#/clusters/dev-east/namespaces/default/pods/multi-0?container=nope');
    await waitText(page, 0, 'Container not found', (text) => text.includes('Container not found') && text.includes('nope'));
  });

  await scenario('log out returns to the login screen', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await until('the login screen', async () => (await page.locator('#login-token').count()) > 0);
    const who = await page.evaluate(() => fetch('/podgate/whoami').then((r) => r.status));
    if (who !== 401) throw new Error(`whoami after logout: ${who}`);
  });
}


/// dev-west has been stopped: opening a shell there says the cluster is unreachable.
async function unreachableGroup() {
  await scenario('a stopped cluster reads unreachable', async () => {
    await devLogin(page, BASE + '/#/clusters/dev-west/namespaces/default/pods/shell-0', 'podgate-demo-admin');
    await until('the tab', async () => (await view(page)).tabs.length === 1);
    await waitText(page, 0, 'unreachable', (text) => text.includes('Cluster unreachable') && text.includes('dev-west'));
    await shot(page, 'cluster-unreachable');
  });
}

/// A gateway with a 4 s idle timeout, a 12 s maximum session duration and one session per
/// user: each ending is written in the terminal, and Enter starts a new session.
async function limitsGroup() {
  const startTicking = async () => {
    await devLogin(page, BASE + '/#/clusters/dev-east/namespaces/default/pods/shell-0', 'podgate-demo-admin');
    await until('the tab', async () => (await view(page)).tabs.length === 1);
    await waitOpen(page, 0);
    // Output every half second keeps this session from idling until its maximum duration.
    await type(page, 'while :; do echo tick; sleep 0.5; done\r');
    await waitText(page, 0, 'ticks', hasLine('tick'));
  };
  await scenario('the session\'s limits are shown, counting down when near', async () => {
    await startTicking();
    const limits = page.locator('.pane:not([hidden]) .term-limits');
    const left = async () => {
      const m = /maximum duration: ends in (\d+)s/.exec(await limits.innerText());
      return m ? Number(m[1]) : null;
    };
    // 12 s and 4 s are both near (within a minute): both count down.
    const first = await until('the countdown', left, 10_000);
    const text = await limits.innerText();
    if (!/idle: ends in \d+s without input or output/.test(text)) throw new Error(`limits: ${text}`);
    if (!(await limits.evaluate((e) => e.classList.contains('near')))) throw new Error('not marked near');
    if (first > 12) throw new Error(`${first}s left of 12 s`);
    await until('the countdown moving', async () => { const n = await left(); return n !== null && n < first; }, 10_000);
    await shot(page, 'limits-countdown');
  });
  await scenario('a second session past the per-user limit is refused with a reason', async () => {
    if ((await view(page)).tabs.length !== 1) await startTicking();
    const second = await pick(page, { cluster: 'dev-east', namespace: 'default', pod: 'multi-0', container: 'app' });
    // The gateway's own words, sent inside the socket (a refused handshake hides them).
    await waitText(page, second, 'the refusal', (text) =>
      text.includes('Session limit reached') && text.includes('already has 1 open sessions, the most allowed'));
    await shot(page, 'session-limit');
    await page.locator('.tab-close').nth(second).click();
  });
  await scenario('maximum session duration is shown', async () => {
    await waitText(page, 0, 'the maximum duration', (text) => text.includes('Maximum session duration reached'), 30_000);
    await shot(page, 'max-duration');
  });
  await scenario('idle timeout is shown, and Enter reconnects', async () => {
    await type(page, '\r');
    await until('a second session', async () => (await tab(page, 0)).stats.sessions === 2);
    await waitText(page, 0, 'the idle timeout', (text) => text.includes('Idle timeout') && text.includes('without input or output'), 30_000);
    await shot(page, 'idle-timeout');
    await type(page, '\r');
    await until('a third session', async () => {
      const t = await tab(page, 0);
      return t.stats.sessions === 3 && t.state === 'open';
    });
    await ready(page, 0);
  });
}


/// Login through the OpenID provider, starting from a deep link that must survive the trip.
async function oidcGroup() {
  await scenario('OIDC login returns to the deep link and opens the shell', async () => {
    const link = '#/clusters/old/namespaces/default/pods/shell-0?container=main';
    await page.goto(BASE + '/' + link);
    await page.locator('#login-oidc').click();
    await page.locator('input[name="username"]').fill(process.env.PODGATE_OIDC_USER || '');
    await page.locator('input[name="password"]').fill(process.env.PODGATE_OIDC_PASSWORD || '');
    await shot(page, 'oidc-provider-login');
    await page.getByRole('button', { name: 'Sign in' }).click();
    // The provider asks for consent the first time.
    await until('back at podgate', async () => {
      if (page.url().startsWith(BASE)) return true;
      const allow = page.getByRole('button', { name: 'Allow' });
      if (await allow.count()) await allow.click().catch(() => {});
      return false;
    });
    await until('logged in', async () => (await page.locator('.who').count()) > 0);
    const who = await page.locator('.who').innerText();
    if (!who.includes(process.env.PODGATE_OIDC_USER || '?')) throw new Error(`logged in as ${who}`);
    await until('the deep link opened', async () => (await view(page)).tabs.length === 1);
    await ready(page, 0);
    await type(page, 'echo via-oidc-$((2+3))\r');
    await waitText(page, 0, 'via-oidc-5', hasLine('via-oidc-5'));
    if ((await page.evaluate(() => location.hash)) !== link) throw new Error('the URL changed');
    await shot(page, 'oidc-logged-in');
  });
  await scenario('log out ends the browser session', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await until('the login screen', async () => (await page.locator('#login-oidc').count()) > 0).catch(async (e) => {
      await shot(page, 'logout-failed');
      throw new Error(`${e.message}; at ${page.url()}: ${(await page.locator('body').innerText()).slice(0, 500)}`);
    });
  });
}

/// The demo with 300 more clusters (fleet-000 .. fleet-299 on dev-east, every tenth in
/// production): the cluster picker shows a page and searches, never the whole list.
async function fleetGroup() {
  const asked = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname === '/podgate/clusters') asked.push(u.search);
  });
  const options = () => page.locator('#pick-cluster option').evaluateAll((os) => os.map((o) => [o.value, o.textContent]));
  await scenario('the cluster picker shows one page of a fleet', async () => {
    await devLogin(page, BASE, 'podgate-demo-admin');
    await until('a page of clusters', async () => (await options()).length === 50);
    const note = await page.locator('#pick-cluster ~ .note').first().innerText();
    if (!/Showing 50 of 302/.test(note)) throw new Error(`note: ${note}`);
    if (asked.some((q) => !/[?&]limit=50\b/.test(q))) throw new Error(`asked without a limit: ${asked}`);
    await shot(page, 'fleet-picker');
  });
  await scenario('the cluster picker searches and opens a shell on what it found', async () => {
    const search = page.locator('#pick-cluster-search');
    await search.fill('production fleet-29');
    await until('the matches', async () => {
      const o = await options();
      return o.length === 1 && o[0][0] === 'fleet-290' ? o : null;
    });
    const [[, label]] = await options();
    if (!label.includes('Fleet 290 (fleet-290) [production]')) throw new Error(`label: ${label}`);
    // Typed fast: only the final search's answer counts.
    await search.fill('');
    await search.type('fleet-123', { delay: 5 });
    await until('fleet-123 alone', async () => {
      const o = await options();
      return o.length === 1 && o[0][0] === 'fleet-123';
    });
    const tab = await pick(page, { cluster: 'fleet-123', namespace: 'default', pod: 'shell-0' });
    await ready(page, tab);
    await type(page, 'echo fleet-$((120+3))\r');
    await waitText(page, tab, 'fleet-123', hasLine('fleet-123'));
    const t = await activeTab(page);
    if (t.target.cluster !== 'fleet-123') throw new Error(JSON.stringify(t.target));
    await shot(page, 'fleet-shell');
  });
  await scenario('the cluster picker says when nothing matches', async () => {
    await page.locator('#tab-new').click();
    await page.locator('#pick-cluster-search').fill('no-such-cluster');
    await until('the note', async () => /No cluster matches/.test(await page.locator('#pick-cluster ~ .note').first().innerText()));
    if (asked.length > 40) throw new Error(`${asked.length} list requests for a few searches`);
  });
}

/// The picker's pre-flight (src/preflight.ts): it asks the cluster (a SelfSubjectAccessReview)
/// before opening a shell; a refusal reads in the picker, with the cluster's answer, and no
/// terminal or WebSocket is opened.
async function preflightGroup() {
  await scenario('bob may not exec: the picker says so with the cluster\'s answer, no terminal', async () => {
    const bob = await launch();
    try {
      const p = bob.pages()[0] ?? (await bob.newPage());
      const reviews = [];
      const sockets = [];
      p.on('request', (r) => {
        if (r.url().endsWith('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews')) reviews.push(r.postDataJSON());
      });
      p.on('websocket', (ws) => sockets.push(ws.url()));
      await devLogin(p, BASE, 'podgate-demo-bob');
      await pick(p, { cluster: 'dev-east', namespace: 'default', pod: 'shell-0' });
      const error = p.locator('.picker .error');
      await until('the refusal in the picker', async () => /may not open a shell/.test(await error.innerText()));
      const text = await error.innerText();
      if (!text.includes('default/shell-0 on dev-east') || !text.includes('cannot get pods/exec')) throw new Error(`picker: ${text}`);
      const asked = reviews.map((r) => r.spec.resourceAttributes);
      if (asked.length !== 1) throw new Error(`reviews: ${JSON.stringify(reviews)}`);
      const a = asked[0];
      if (a.verb !== 'get' || a.resource !== 'pods' || a.subresource !== 'exec' || a.namespace !== 'default' || a.name !== 'shell-0') {
        throw new Error(`asked: ${JSON.stringify(a)}`);
      }
      const v = await view(p);
      if (v.tabs.length !== 0) throw new Error(`a terminal opened: ${JSON.stringify(v.tabs.map((t) => t.title))}`);
      if (sockets.length) throw new Error(`WebSockets opened: ${sockets}`);
      if (await p.locator('#pick-open').isHidden()) throw new Error('the picker is gone');
      await shot(p, 'preflight-bob');
    } finally {
      await bob.close();
    }
  });
  await scenario('admin passes the pre-flight and gets a shell', async () => {
    await devLogin(page, BASE, 'podgate-demo-admin');
    const tab = await pick(page, { cluster: 'dev-east', namespace: 'default', pod: 'shell-0' });
    if (tab !== 0) throw new Error(`tab ${tab}: ${await page.locator('.picker .error').innerText()}`);
    await ready(page, tab);
    await type(page, 'echo pre-$((40+2))\r');
    await waitText(page, 0, 'pre-42', hasLine('pre-42'));
    if (await page.locator('.picker .error').innerText()) throw new Error('an error in the picker');
  });
}

const groups = { main: mainGroup, unreachable: unreachableGroup, limits: limitsGroup, oidc: oidcGroup, fleet: fleetGroup, preflight: preflightGroup };
if (!groups[GROUP]) {
  console.error(`unknown PODGATE_GROUP ${GROUP}`);
  process.exit(2);
}
await groups[GROUP]();

await scenario('no errors in the page console', async () => {
  // Refused requests are expected (whoami before login, the exec probes); script errors and
  // CSP violations are not.
  const relevant = consoleErrors.filter((e) => !/^Failed to load resource|WebSocket connection to .* failed/.test(e));
  if (relevant.length) throw new Error(relevant.join('\n'));
});

await finish([admin]);
