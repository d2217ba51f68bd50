// Sessions on record in real Chromium: watching another browser's session, ending it from the
// sessions page, replaying a finished session's recording, and who may see what. Run by
// tests/tests/ui_sessions.rs against a gateway that records every session (best effort), with
//   PODGATE_URL          https://127.0.0.1:PORT of the gateway
//   PODGATE_SCREENSHOTS  directory for screenshots
//   PODGATE_GROUP        "sessions" (browser sessions), or "kubectl" (a kubectl session the
//                        Rust test runs, its id in PODGATE_SESSION: watched, then ended)
//   PODGATE_OUT          optional: a directory for replay-final.json (the recording id and the
//                        live terminal's last screen, for the Rust test's own replay in pyte)
//   PODGATE_ONLY         optional: a substring of the scenario names to run
// The gateway's people: admin (group system:masters: sees, watches, ends and replays every
// session), alice (`operators.sessions`: sees every session, nothing more), carol (no rights:
// her own sessions only). Prints "ok - NAME" / "FAIL - NAME: why" and "N passed, N failed".
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BASE, GROUP, call, devLogin, finish, firstPage, hasLine, launch, lines, pick, ready, scenario, screen, shot, tab,
  type, until, view, waitOpen, waitText, watchErrors,
} from './driver.mjs';

const ADMIN = 'podgate-demo-admin';
const ALICE = 'podgate-demo-alice';
const CAROL = 'podgate-test-carol';
const SHELL = { cluster: 'dev-east', namespace: 'default', pod: 'shell-0' };
const OUT = process.env.PODGATE_OUT || '';
if (GROUP !== 'sessions' && GROUP !== 'kubectl') {
  console.error(`unknown PODGATE_GROUP ${GROUP}`);
  process.exit(2);
}

const errors = [];
const adminCtx = await launch();
const aliceCtx = await launch();
const carolCtx = await launch();
const watcher = await firstPage(adminCtx, errors);
const alice = await firstPage(aliceCtx, errors);
const carol = await firstPage(carolCtx, errors);

/// The page view (sessions, observe, recordings or replay) of `page`.
const pageView = async (page) => (await view(page)).page;
async function waitPage(page, what, pred) {
  return until(what, async () => {
    const p = await pageView(page);
    return p && pred(p) ? p : null;
  }).catch(async (e) => {
    const p = await pageView(page).catch(() => null);
    throw new Error(`${e.message}\n--- page ---\n${JSON.stringify(p, null, 1)?.slice(0, 4000)}\n---`);
  });
}
/// The watched person's screen without podgate's notices about watchers (they go to the person
/// only: the recording has them as markers).
const withoutNotices = (text) => screen(text).filter((l) => !/^\[podgate: .* watching this session/.test(l));
const same = (a, b) => a.length === b.length && a.every((l, i) => l === b[i]);
const diff = (a, b) => `--- expected ---\n${a.join('\n')}\n--- got ---\n${b.join('\n')}\n---`;

async function sessionsGroup() {
  let observedId = '';
  let aliceTab = -1;

  await scenario('an observer in another browser sees the screen from before it joined, then live output', async () => {
    await devLogin(alice, BASE, ALICE);
    aliceTab = await pick(alice, SHELL);
    await ready(alice, aliceTab);
    // Colour, a non-ASCII character, and lines the observer was not there for.
    await type(alice, "printf 'before-%s\\n' 1 2 3; printf '\\033[1;31mred\\033[0m zo\\303\\253\\n'\r");
    await waitText(alice, aliceTab, 'the output before', hasLine('red zoë'));

    await devLogin(watcher, BASE, ADMIN);
    await watcher.locator('#nav-sessions').click();
    const list = await waitPage(watcher, "alice's session listed", (p) => p.kind === 'sessions' && p.list?.items.some((s) => s.user === 'alice'));
    const mine = list.list.items.find((s) => s.user === 'alice');
    observedId = mine.id;
    if (!mine.recording || !mine.observable) throw new Error(`the session is not recorded: ${JSON.stringify(mine)}`);
    await watcher.locator(`tr[data-session="${observedId}"] a.observe`).click();
    await until('the observe URL', async () => (await watcher.evaluate(() => location.hash)) === `#/sessions/${observedId}/observe`);
    // The observer's screen is the person's (their notices aside), the lines from before included.
    await until("the observer shows alice's screen", async () => {
      const p = await pageView(watcher);
      if (p?.kind !== 'observe' || p.state !== 'watching' || p.pending) return false;
      const t = await tab(alice, aliceTab);
      return same(withoutNotices(t.text), screen(p.text)) && screen(p.text).includes('red zoë') && screen(p.text).includes('before-1');
    }).catch(async (e) => {
      const p = await pageView(watcher);
      const t = await tab(alice, aliceTab);
      throw new Error(`${e.message}\n${diff(withoutNotices(t.text), screen(p?.text ?? ''))}`);
    });
    const joined = await pageView(watcher);
    const t = await tab(alice, aliceTab);
    if (joined.cols !== t.cols || joined.rows !== t.rows) throw new Error(`observer ${joined.cols}x${joined.rows}, person ${t.cols}x${t.rows}`);
    // The person is told who watches.
    await waitText(alice, aliceTab, 'the watch notice', (text) => text.includes('[podgate: admin started watching this session (read-only)]'));
    await shot(watcher, 'observe');

    // Live: a cleared screen, then new output, reaches the observer as it happens.
    await type(alice, "printf '\\033[H\\033[2J\\033[3J'; echo live-$((6*7)); printf 'caf\\303'; sleep 0.3; printf '\\251 after\\n'\r");
    await waitText(alice, aliceTab, 'the live output', (text) => hasLine('café after')(text) && hasLine('live-42')(text));
    await until('the observer shows the live output, screen for screen', async () => {
      const p = await pageView(watcher);
      const t2 = await tab(alice, aliceTab);
      return !p.pending && screen(p.text).includes('live-42') && same(screen(t2.text), screen(p.text));
    }).catch(async (e) => {
      const p = await pageView(watcher);
      throw new Error(`${e.message}\n${diff(screen((await tab(alice, aliceTab)).text), screen(p.text))}`);
    });

    // Read-only: what the observer types goes nowhere.
    await watcher.locator('.cast-host .xterm').click();
    await watcher.keyboard.type('echo typed-by-observer\r');
    await type(alice, 'echo after-$((1+1))\r');
    await waitText(alice, aliceTab, 'after-2', hasLine('after-2'));
    if ((await tab(alice, aliceTab)).text.includes('typed-by-observer')) throw new Error("the observer's keys reached the shell");
  });

  await scenario('an operator ends a session from the sessions page: the person and the observer read who and why', async () => {
    if (!observedId) throw new Error('no observed session (the scenario before failed)');
    const ops = await adminCtx.newPage();
    watchErrors(ops, errors);
    await ops.goto(`${BASE}/#/sessions`);
    const row = ops.locator(`tr[data-session="${observedId}"]`);
    await until('the session listed with one observer', async () => (await row.locator('td.observers').innerText()) === '1');
    await row.locator('button.terminate').click();
    await ops.locator('.reason-row input.reason').fill('incident 412');
    await shot(ops, 'terminate');
    await ops.locator('.reason-row button.confirm-terminate').click();
    await waitText(alice, aliceTab, 'the ending, with who and why', (text, t) =>
      t.state === 'ended' && text.includes('podgate: session closed by admin: incident 412'));
    await waitPage(watcher, 'the observer reads the ending', (p) =>
      p.state === 'ended' && p.ending.includes('podgate: session closed by admin: incident 412') && p.banner === p.ending);
    await until('the session gone from the list', async () => (await row.count()) === 0);
    await shot(watcher, 'observe-ended');
    if (await watcher.locator('#observe-again').isVisible()) throw new Error('"Watch again" is offered for a session that ended');
    // A session that is not (or no longer) live: podgate's answer, and another try offered.
    await ops.goto(`${BASE}/#/sessions/${observedId}/observe`);
    await waitPage(ops, 'the refusal', (p) => p.state === 'ended' && /HTTP 404.*is not live on this replica/.test(p.ending));
    if (!(await ops.locator('#observe-again').isVisible())) throw new Error('no "Watch again" after a refusal');
    await ops.close();
  });

  let recordingId = '';
  let finalScreen = [];
  await scenario("a finished session's replay reaches the live terminal's last screen, through a resize and a split character", async () => {
    const t = await pick(alice, SHELL);
    await ready(alice, t);
    const live = (await call(alice, 'GET', '/podgate/sessions')).body;
    const session = JSON.parse(live).items.find((s) => s.user === 'alice' && s.pod === 'shell-0');
    if (!session?.recording) throw new Error(`no recorded live session of alice: ${live}`);
    recordingId = session.recording;
    const first = await tab(alice, t);
    await alice.setViewportSize({ width: 760, height: 430 });
    await until('the resize sent', async () => {
      const x = await tab(alice, t);
      const last = x.stats.resizes[x.stats.resizes.length - 1];
      return x.cols !== first.cols && last && last.cols === x.cols && last.rows === x.rows;
    });
    const resized = await tab(alice, t);
    await type(alice, 'stty size; seq 1 40\r');
    await waitText(alice, t, 'the new size', (text) => hasLine('40')(text) && hasLine(`${resized.rows} ${resized.cols}`)(text));
    // Each printf is its own write, so each piece arrives in its own frame, cut mid-character
    // (short command lines: none wraps, so any terminal draws them alike).
    const split = (await tab(alice, t)).stats.splitFrames;
    await type(alice, 'p() { printf "$1"; sleep 0.3; }\r');
    await type(alice, "p 'caf\\303'; p '\\251 \\342\\202'; p '\\254 \\360\\237'; p '\\230\\200 done\\n'\r");
    await waitText(alice, t, 'the split characters', (text) => lines(text).some((l) => l === 'café € 😀 done'));
    if ((await tab(alice, t)).stats.splitFrames <= split) throw new Error('no frame ended inside a character: the test proved nothing');
    await type(alice, "printf '\\033[7mlast screen\\033[0m \\342\\234\\223\\n'\r");
    await waitText(alice, t, 'the last output', hasLine('last screen ✓'));
    await type(alice, 'exit\r');
    // The notice is parsed after the state changes: wait for both.
    const ended = await waitText(alice, t, 'the end', (text, x) => x.state === 'ended' && text.includes('process exited with code 0'));
    const liveScreen = screen(ended.text);

    await watcher.goto(`${BASE}/#/recordings/${encodeURIComponent(recordingId)}`);
    const loaded = await waitPage(watcher, 'the recording loaded', (p) => p.kind === 'replay' && p.loaded && !p.pending);
    await watcher.locator('#replay-seek').fill(await watcher.locator('#replay-seek').getAttribute('max'));
    const end = await waitPage(watcher, 'the end of the replay', (p) => p.applied === p.events && !p.pending);
    finalScreen = screen(end.text);
    // The live terminal shows the same lines, then its own ending notice below them.
    const head = liveScreen.slice(0, finalScreen.length);
    if (!same(head, finalScreen)) throw new Error(`the replay's last screen differs from the live one\n${diff(head, finalScreen)}`);
    const notice = liveScreen.slice(finalScreen.length).join('\n');
    if (!finalScreen.includes('café € 😀 done') || !finalScreen.includes('last screen ✓')) throw new Error(`the replay lacks the output:\n${finalScreen.join('\n')}`);
    if (!notice.includes('process exited with code 0')) throw new Error(`the live terminal's remainder is not its ending notice: ${notice}`);
    if (end.cols !== resized.cols || end.rows !== resized.rows) throw new Error(`replay ${end.cols}x${end.rows}, live ${resized.cols}x${resized.rows}`);
    if (!end.markers.some((m) => /^end: completed, exit code 0/.test(m))) throw new Error(`markers: ${JSON.stringify(end.markers)}`);
    if (end.text.includes('\ufffd')) throw new Error('a replacement character was drawn');
    await shot(watcher, 'replay-end');

    // Back to the start: the terminal is reset, the later output gone; then played at 16x.
    await watcher.locator('#replay-seek').fill('0');
    await waitPage(watcher, 'the start again', (p) => p.applied < loaded.events && !p.pending && !screen(p.text).includes('café € 😀 done'));
    const atStart = await pageView(watcher);
    if (atStart.cols !== first.cols || atStart.rows !== first.rows) throw new Error(`at the start ${atStart.cols}x${atStart.rows}, the first size was ${first.cols}x${first.rows}`);
    await watcher.locator('#replay-speed').selectOption('16');
    await watcher.locator('#replay-play').click();
    await waitPage(watcher, 'playing', (p) => p.playing && p.speed === 16);
    const played = await waitPage(watcher, 'played to the end', (p) => !p.playing && p.applied === p.events && !p.pending);
    if (!same(screen(played.text), finalScreen)) throw new Error(`played, the last screen differs\n${diff(finalScreen, screen(played.text))}`);
    if (OUT) {
      // The visible rows (the last of the buffer), as another terminal emulator would have them.
      const visible = lines(end.text).slice(-end.rows);
      writeFileSync(join(OUT, 'replay-final.json'), JSON.stringify({ recording: recordingId, visible, cols: end.cols, rows: end.rows }));
    }
    await alice.setViewportSize({ width: 1100, height: 700 });
  });

  await scenario('the recordings page filters by user and pages with continue, and links to the replay', async () => {
    if (!recordingId) throw new Error('no recording (the scenario before failed)');
    await watcher.goto(`${BASE}/#/recordings?limit=1`);
    await waitPage(watcher, 'a page of recordings', (p) => p.kind === 'recordings' && p.pages === 1);
    await watcher.locator('#recordings-user').fill('alice');
    await watcher.locator('#recordings-pod').fill('shell-0');
    await watcher.locator('#recordings-search').click();
    await until('the filter in the URL', async () => (await watcher.evaluate(() => location.hash)) === '#/recordings?pod=shell-0&user=alice&limit=1');
    const p1 = await waitPage(watcher, "alice's newest recording", (p) => p.kind === 'recordings' && p.list?.items.length === 1);
    if (p1.list.items[0].id !== recordingId) throw new Error(`newest first: ${JSON.stringify(p1.list.items)}`);
    if (!p1.list.continue) throw new Error('one per page, two recordings, and no continue');
    await watcher.locator('#recordings-next').click();
    const p2 = await waitPage(watcher, 'the next page', (p) => p.paged && p.list?.items.length === 1);
    const older = p2.list.items[0];
    if (older.id === recordingId || older.user !== 'alice' || older.outcome !== 'terminated') throw new Error(`the next page: ${JSON.stringify(older)}`);
    await shot(watcher, 'recordings');
    await watcher.locator('#recordings-first').click();
    await waitPage(watcher, 'the first page again', (p) => !p.paged && p.list?.items[0]?.id === recordingId);
    await watcher.locator(`tr[data-recording="${recordingId}"] a.replay`).click();
    await waitPage(watcher, 'the replay from the list', (p) => p.kind === 'replay' && p.id === recordingId && p.loaded);
    // A link to the replay (as the audit's end line names it) opened before logging in.
    const fresh = await launch();
    try {
      const page = await firstPage(fresh, errors);
      await devLogin(page, `${BASE}/#/recordings/${encodeURIComponent(recordingId)}`, ADMIN);
      await waitPage(page, 'the replay after the login', (p) => p.kind === 'replay' && p.id === recordingId && p.loaded && p.events > 0);
    } finally {
      await fresh.close();
    }
    // Time: started after a moment long past finds it, after one to come finds nothing.
    await watcher.goto(`${BASE}/#/recordings?user=alice`);
    await waitPage(watcher, 'the recordings page', (p) => p.kind === 'recordings' && p.pages === 1);
    await watcher.locator('#recordings-since').fill('2000-01-01T00:00');
    await watcher.locator('#recordings-search').click();
    await until('since in the URL', async () => (await watcher.evaluate(() => location.hash)).includes('since=2000-01-01T00%3A00%3A00Z'));
    await waitPage(watcher, 'found since 2000', (p) => p.list?.items.some((e) => e.id === recordingId));
    await watcher.locator('#recordings-since').fill('2099-01-01T00:00');
    await watcher.locator('#recordings-search').click();
    await waitPage(watcher, 'nothing since 2099', (p) => p.list?.items.length === 0 && !p.error);
    await until('nothing matches', async () => /No recordings match/.test(await watcher.locator('#recordings-status').innerText()));
    // A user filter that matches nobody.
    await watcher.goto(`${BASE}/#/recordings?user=nobody-at-all`);
    await waitPage(watcher, 'nobody', (p) => p.kind === 'recordings' && p.list?.items.length === 0 && !p.error);
  });

  await scenario('without rights: only your own sessions, no controls for others, and podgate refuses', async () => {
    // The admin's own live session, that others try to reach.
    const at = await pick(watcher, SHELL);
    await waitOpen(watcher, at);
    const mine = JSON.parse((await call(watcher, 'GET', '/podgate/sessions')).body).items.find((s) => s.user === 'admin');
    if (!mine) throw new Error("the admin's session is not listed");

    await devLogin(carol, BASE, CAROL);
    const ct = await pick(carol, SHELL);
    await waitOpen(carol, ct);
    await carol.goto(`${BASE}/#/sessions`);
    const cl = await waitPage(carol, "carol's list", (p) => p.kind === 'sessions' && p.list?.items.length >= 1);
    if (!cl.list.items.every((s) => s.user === 'carol')) throw new Error(`carol sees others' sessions: ${JSON.stringify(cl.list.items)}`);
    if (cl.list.may_replay) throw new Error('carol may replay');
    if (await carol.locator(`tr[data-session="${mine.id}"]`).count()) throw new Error("the admin's session is on carol's page");
    if (await carol.locator('#sessions-table a.replay').count()) throw new Error('carol is offered a recording');
    for (const [method, path, code] of [
      ['GET', '/podgate/recordings', 403],
      ['GET', `/podgate/recordings/${encodeURIComponent(recordingId)}`, 403],
      ['GET', `/podgate/sessions/${mine.id}/observe`, 404],
      ['DELETE', `/podgate/sessions/${mine.id}?reason=x`, 404],
    ]) {
      const r = await call(carol, method, path);
      if (r.code !== code) throw new Error(`carol ${method} ${path}: ${r.code} ${r.body}, not ${code}`);
    }
    await carol.locator('#nav-recordings').click();
    await until('the refusal on the recordings page', async () => /may not list or replay recordings/.test(await carol.locator('#recordings-error').innerText()));
    await carol.goto(`${BASE}/#/recordings/${encodeURIComponent(recordingId)}`);
    await until('the refusal on the replay page', async () => /403.*may not list or replay/.test(await carol.locator('#replay-error').innerText()));
    await shot(carol, 'recordings-refused');

    // alice may see every session, and do nothing to others'.
    await alice.goto(`${BASE}/#/sessions`);
    await waitPage(alice, "alice's list with the others'", (p) => p.kind === 'sessions' && p.list?.items.some((s) => s.id === mine.id) && p.list.items.some((s) => s.user === 'carol'));
    const row = alice.locator(`tr[data-session="${mine.id}"]`);
    for (const control of ['a.observe', 'button.terminate', 'a.replay']) {
      if (await row.locator(control).count()) throw new Error(`alice is offered ${control} on the admin's session`);
    }
    for (const [method, path] of [['GET', `/podgate/sessions/${mine.id}/observe`], ['DELETE', `/podgate/sessions/${mine.id}?reason=x`], ['GET', '/podgate/recordings']]) {
      const r = await call(alice, method, path);
      if (r.code !== 403) throw new Error(`alice ${method} ${path}: ${r.code} ${r.body}, not 403`);
    }
    if ((await tab(watcher, at)).state !== 'open') throw new Error("the admin's session did not survive");
    // The admin, by contrast, is offered everything on carol's session.
    await watcher.goto(`${BASE}/#/sessions`);
    const carolRow = watcher.locator('tr[data-session]', { hasText: 'carol' });
    await until("carol's session with every control", async () =>
      (await carolRow.locator('a.observe').count()) === 1 && (await carolRow.locator('button.terminate').count()) === 1 && (await carolRow.locator('a.replay').count()) === 1);
    // Its recording so far, from the list.
    const carols = JSON.parse((await call(watcher, 'GET', '/podgate/sessions')).body).items.find((s) => s.user === 'carol');
    await carolRow.locator('a.replay').click();
    await waitPage(watcher, "carol's live recording in the replay", (p) => p.kind === 'replay' && p.id === carols.recording && p.loaded && p.events > 0);
  });

}

/// A kubectl session (started by the Rust test, its id in PODGATE_SESSION), watched and ended
/// here as a browser session is.
async function kubectlGroup() {
  const id = process.env.PODGATE_SESSION || '';
  await scenario('a kubectl session is watched and ended from the browser', async () => {
    await devLogin(watcher, `${BASE}/#/sessions`, ADMIN);
    const row = watcher.locator(`tr[data-session="${id}"]`);
    await until('the kubectl session listed', async () => (await row.count()) === 1 && /kubectl \(no tty\)/.test(await row.innerText()));
    await row.locator('a.observe').click();
    // Without a terminal, newlines start a line (the view does what onlcr would have).
    await waitPage(watcher, 'its output', (p) => p.kind === 'observe' && p.state === 'watching' && !p.pending &&
      screen(p.text).includes('kubectl-was-here') && screen(p.text).includes('café'));
    const ops = await adminCtx.newPage();
    watchErrors(ops, errors);
    await ops.goto(`${BASE}/#/sessions`);
    const r = ops.locator(`tr[data-session="${id}"]`);
    await until('watched by one', async () => (await r.count()) === 1 && (await r.locator('td.observers').innerText()) === '1');
    await r.locator('button.terminate').click();
    await ops.locator('.reason-row input.reason').fill('kubectl done');
    await ops.locator('.reason-row button.confirm-terminate').click();
    await waitPage(watcher, 'the observer reads the ending', (p) => p.state === 'ended' && p.ending.includes('podgate: session closed by admin: kubectl done'));
    await ops.close();
  });
}

if (GROUP === 'sessions') await sessionsGroup();
else await kubectlGroup();

await scenario('no errors in the page console', async () => {
  // Refused requests are expected (whoami before login, the refusals above); script errors
  // and CSP violations are not.
  const relevant = errors.filter((e) => !/^Failed to load resource|WebSocket connection to .* failed/.test(e));
  if (relevant.length) throw new Error(relevant.join('\n'));
});

await finish([adminCtx, aliceCtx, carolCtx]);
