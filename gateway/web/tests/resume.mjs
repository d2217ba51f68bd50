// Resume after a dropped connection, in real Chromium (docs/protocol.md, `podgate.resume.v1`).
// Run by tests/tests/ui_resume.rs, which puts a TCP proxy of its own between this browser and
// the gateway and serves its controls over HTTP, with
//   PODGATE_URL          https://127.0.0.1:PORT of the proxy in front of the gateway
//   PODGATE_CONTROL      http://127.0.0.1:PORT of the proxy's controls (POST /reset, /break,
//                        /silent, /restore; GET /stats; GET /metrics: the gateway's metrics)
//   PODGATE_SCREENSHOTS  directory for screenshots
//   PODGATE_GROUP        "resume" (default settings: a reset, a silent link, input while
//                        disconnected, another user's resume), "window" (a 3 s resume window),
//                        or "overflow" (a 16 KiB buffer with resume_overflow: overwrite)
//   PODGATE_ONLY         optional: a substring of the scenario names to run
// Prints "ok - NAME" / "FAIL - NAME: why" and "N passed, N failed".
import {
  BASE, GROUP, devLogin, finish, firstPage, hasLine, launch, lines, press, ready, scenario, shot, tab, type, until,
  view, waitText, watchErrors,
} from './driver.mjs';

const ADMIN = 'podgate-demo-admin';
const ALICE = 'podgate-demo-alice';
const LINK = '#/clusters/dev-east/namespaces/default/pods/shell-0?container=main';
const CONTROL = process.env.PODGATE_CONTROL;
if (!CONTROL) {
  console.error('PODGATE_CONTROL is not set');
  process.exit(2);
}
if (!['resume', 'window', 'overflow'].includes(GROUP)) {
  console.error(`unknown PODGATE_GROUP ${GROUP}`);
  process.exit(2);
}
/// How long the link stays broken in the reset and silent scenarios (on purpose: the fault).
const BROKEN_MS = 10_000;

// --- the proxy and the gateway's metrics ---------------------------------------------------

async function proxy(what) {
  const r = await fetch(`${CONTROL}/${what}`, { method: 'POST' });
  if (r.status !== 200) throw new Error(`proxy ${what}: HTTP ${r.status}`);
}
async function proxyStats() {
  return (await fetch(`${CONTROL}/stats`)).json();
}
/// The sum of the samples of `name` that carry every label pair of `labels`.
async function metric(name, labels = {}) {
  const text = await (await fetch(`${CONTROL}/metrics`)).text();
  let sum = 0;
  for (const l of text.split('\n')) {
    if (!l.startsWith(`${name}{`) && !l.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))) continue;
    sum += Number(l.slice(l.lastIndexOf(' ') + 1));
  }
  return sum;
}
const resumesSucceeded = () => metric('podgate_resumes_total', { result: 'succeeded' });

// --- the page -------------------------------------------------------------------------------

const errors = [];
const adminCtx = await launch();
const admin = await firstPage(adminCtx, errors);
await devLogin(admin, BASE, ADMIN);

/// A page of its own on shell-0 through the proxy, its shell ready and resumable; the control
/// frames podgate sent it (`hello`...) collected from the network as they arrived.
async function openShell(ctx = adminCtx) {
  const page = await ctx.newPage();
  watchErrors(page, errors);
  const control = [];
  page.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => {
    if (typeof payload !== 'string' && payload[0] === 128) control.push(JSON.parse(payload.subarray(1).toString('utf8')));
  }));
  await page.goto(`${BASE}/${LINK}`);
  await until('the tab', async () => (await view(page)).tabs.length === 1);
  await ready(page, 0);
  await until('podgate\'s hello', async () => (await tab(page, 0)).stats.resumable);
  const hello = control.find((m) => m.type === 'hello');
  if (!hello) throw new Error(`no hello frame seen on the network: ${JSON.stringify(control)}`);
  return { page, control, hello };
}

/// The shell's PID, asked with a marker of its own.
async function pid(page, marker) {
  await type(page, `echo "pid-$$-${marker}"\r`);
  const re = new RegExp(`^pid-(\\d+)-${marker}$`);
  const t = await waitText(page, 0, `the PID (${marker})`, (text) => lines(text).some((l) => re.test(l)));
  return lines(t.text).map((l) => re.exec(l)).find(Boolean)[1];
}

/// The numbers of the lines `PREFIX<number>` (a `^C` after the last allowed), in order; for
/// the flood's lines, `f=<number> 0...` (a line cut short by a gap is not read as a number).
function numbered(text, prefix) {
  const re = prefix === 'f=' ? /^f=(\d+) 0/ : new RegExp(`^${prefix}(\\d+)(?:\\^C)?$`);
  return lines(text).map((l) => re.exec(l)).filter(Boolean).map((m) => Number(m[1]));
}
const lastNumber = async (page, prefix) => numbered((await tab(page, 0)).text, prefix).at(-1) ?? 0;

/// Every number from 1 to the last exactly once, in order; else what is wrong.
function checkComplete(ns) {
  const problems = [];
  for (let i = 0; i < ns.length; i++) {
    if (ns[i] !== i + 1) problems.push(`line ${i}: n=${ns[i]} where n=${i + 1} belongs (after n=${ns[i - 1]})`);
    if (problems.length > 5) break;
  }
  return problems;
}

const COUNTER = 'i=0; while :; do i=$((i+1)); echo "n=$i"; sleep 0.05; done';

/// The numbered lines, a drop made by `breakLink`, the link kept broken for 10 s, restored:
/// every number shown once and in order, the same shell after, and the resume was real (a new
/// connection through the proxy, and podgate counted a resume).
async function dropAndResume(breakLink, how) {
  const { page } = await openShell();
  try {
    const before = await pid(page, 'before');
    await type(page, `${COUNTER}\r`);
    await waitText(page, 0, 'numbers counting', (text) => numbered(text, 'n=').length >= 20);
    const succeeded = await resumesSucceeded();
    const accepted = (await proxyStats()).accepted;
    const atDrop = await lastNumber(page, 'n=');
    await breakLink();
    const brokenAt = Date.now();
    if (how === 'reset') {
      // A reset is noticed at once: the banner counts down the window.
      const t = await waitText(page, 0, 'reconnecting', (_, t) => t.state === 'reconnecting', 15_000);
      if (!/^reconnecting… \(\d+s left\)$/.test(t.stats.banner)) throw new Error(`banner ${JSON.stringify(t.stats.banner)}`);
      if (!(await page.locator('.pane:not([hidden]) .reconnect-banner').isVisible())) throw new Error('the banner is not visible');
      await shot(page, 'resume-reconnecting');
    }
    // The link stays down for 10 s on purpose (the fault, not a synchronisation).
    await new Promise((r) => setTimeout(r, Math.max(0, BROKEN_MS - (Date.now() - brokenAt))));
    const during = await tab(page, 0);
    if (how === 'reset') {
      if (during.state !== 'reconnecting') throw new Error(`state ${during.state} while the link is down`);
      if (during.stats.resumeAttempts < 3) throw new Error(`only ${during.stats.resumeAttempts} attempts in 10 s`);
    }
    await proxy('restore');
    await waitText(page, 0, 'the session resumed', (_, t) => t.state === 'open' && t.stats.resumes === 1, 60_000);
    // Live again: the counter goes on past where it was.
    const resumedAt = await lastNumber(page, 'n=');
    await waitText(page, 0, 'numbers counting after the resume', (text) => (numbered(text, 'n=').at(-1) ?? 0) >= resumedAt + 20);
    await press(page, 'Control+C');
    const after = await pid(page, 'after');
    if (after !== before) throw new Error(`the shell was PID ${before}, now ${after}: not the same process`);
    const t = await tab(page, 0);
    const ns = numbered(t.text, 'n=');
    const problems = checkComplete(ns);
    if (problems.length) throw new Error(`the numbers are not each once in order:\n${problems.join('\n')}\n(drop at n=${atDrop})`);
    if (ns.at(-1) < atDrop + 100) throw new Error(`only up to n=${ns.at(-1)}, dropped at n=${atDrop}: the counter did not run on`);
    if (t.stats.drops !== 1 || t.stats.lastGap !== 0) throw new Error(`stats ${JSON.stringify(t.stats)}`);
    if (how === 'silent' && t.stats.deadLinks !== 1) throw new Error(`the dead link was not detected: ${JSON.stringify(t.stats)}`);
    if (t.stats.sessions !== 1) throw new Error(`${t.stats.sessions} new sessions: the resume opened a new one`);
    // The resume path was really taken: a new connection and podgate's count.
    const stats = await proxyStats();
    if (stats.accepted <= accepted) throw new Error(`no new connection through the proxy: ${JSON.stringify(stats)}`);
    await until('podgate counted the resume', async () => (await resumesSucceeded()) >= succeeded + 1, 10_000);
    console.log(`  ${how}: dropped at n=${atDrop}, ${ns.length} numbers, ${t.stats.resumeAttempts} attempts, pid ${after}`);
  } finally {
    await page.close();
  }
}

async function resumeGroup() {
  await scenario('a reset connection resumes: every number once, in order, the same shell', async () => {
    await dropAndResume(async () => {
      await proxy('break');
      await proxy('reset');
    }, 'reset');
  });

  await scenario('a silent connection is detected and resumes: every number once, in order, the same shell', async () => {
    await dropAndResume(() => proxy('silent'), 'silent');
  });

  await scenario('input typed while disconnected is sent after the resume; past 4 KiB it is refused visibly', async () => {
    const { page } = await openShell();
    try {
      await proxy('break');
      await proxy('reset');
      await waitText(page, 0, 'reconnecting', (_, t) => t.state === 'reconnecting', 15_000);
      await type(page, 'echo queued-$((40+2))\r');
      const queued = await tab(page, 0);
      if (queued.stats.queuedInput !== 'echo queued-$((40+2))\r'.length) throw new Error(`queued ${queued.stats.queuedInput} bytes`);
      // A paste past what is kept: refused whole, with a bell and a line saying so.
      await page.locator('.pane:not([hidden]) .xterm-helper-textarea').focus();
      await page.keyboard.insertText('x'.repeat(5000));
      const refused = await waitText(page, 0, 'the refusal', (text, t) =>
        t.stats.refusedInput >= 5000 && text.includes('input past 4 KiB is refused'));
      if (refused.stats.queuedInput !== queued.stats.queuedInput) throw new Error(`queue ${refused.stats.queuedInput}`);
      await shot(page, 'resume-input-refused');
      await proxy('restore');
      await waitText(page, 0, 'the queued command ran after the resume', (text, t) => t.stats.resumes === 1 && hasLine('queued-42')(text), 60_000);
      const t = await tab(page, 0);
      if (t.text.includes('x'.repeat(100))) throw new Error('the refused paste reached the shell');
    } finally {
      await page.close();
    }
  });

  await scenario("another user's resume is refused; a session id without its credential resumes nothing", async () => {
    const { page, hello } = await openShell();
    const aliceCtx = await launch();
    try {
      const alice = await firstPage(aliceCtx, errors);
      await devLogin(alice, BASE, ALICE);
      const forbiddenBefore = await metric('podgate_resumes_total', { result: 'failed' });
      /// A resume from `p` with `credential`: the control messages and the close.
      const attempt = (p, credential) => p.evaluate(async ([session, cred]) => {
        const url = new URL(`/podgate/sessions/${encodeURIComponent(session)}/resume`, location.href);
        url.protocol = 'wss:';
        const ws = new WebSocket(url, ['v5.channel.k8s.io', 'podgate.resume.v1', `resume.podgate.io.${cred}`, 'offset.podgate.io.0']);
        ws.binaryType = 'arraybuffer';
        const got = [];
        return new Promise((resolve) => {
          const timer = setTimeout(() => { ws.close(); resolve({ got, close: 'timeout' }); }, 20_000);
          ws.onmessage = (ev) => {
            const b = new Uint8Array(ev.data);
            got.push(b[0] === 128 ? JSON.parse(new TextDecoder().decode(b.subarray(1))) : { stream: b[0], bytes: b.length - 1 });
          };
          ws.onclose = (ev) => { clearTimeout(timer); resolve({ got, close: ev.code }); };
        });
      }, [hello.session, credential]);
      const stolen = await attempt(alice, hello.credential);
      const refusedOf = (a) => a.got.find((m) => m.type === 'refused');
      if (refusedOf(stolen)?.reason !== 'forbidden' || stolen.got.some((m) => m.type === 'resumed' || m.stream === 1)) {
        throw new Error(`alice with admin's credential: ${JSON.stringify(stolen)}`);
      }
      if (stolen.close !== 1008) throw new Error(`closed ${stolen.close}, not 1008`);
      // The owner, without the credential: the session id alone resumes nothing.
      const owner = await adminCtx.newPage();
      await owner.goto(`${BASE}/#/sessions`);
      const guessed = await attempt(owner, 'A'.repeat(43));
      await owner.close();
      if (!['bad_credential', 'forbidden'].includes(refusedOf(guessed)?.reason) || guessed.got.some((m) => m.type === 'resumed')) {
        throw new Error(`a made-up credential: ${JSON.stringify(guessed)}`);
      }
      // Neither took the session over: admin's tab is attached and works.
      await type(page, 'echo still-$((6*7))-mine\r');
      await waitText(page, 0, 'the session still works', hasLine('still-42-mine'));
      const t = await tab(page, 0);
      if (t.state !== 'open' || t.stats.drops !== 0) throw new Error(`the owner's tab: ${t.state} ${JSON.stringify(t.stats)}`);
      await until('podgate counted the refusals', async () =>
        (await metric('podgate_resumes_total', { result: 'failed' })) >= forbiddenBefore + 2, 10_000);
    } finally {
      await aliceCtx.close();
      await page.close();
    }
  });
}

async function windowGroup() {
  await scenario('a drop longer than the window ends the tab: it says the session could not be resumed, Enter starts a new one', async () => {
    const { page, hello } = await openShell();
    try {
      if (hello.window_seconds !== 3) throw new Error(`window ${hello.window_seconds} s, the test set 3 s`);
      const firstPid = await pid(page, 'first');
      await proxy('break');
      await proxy('reset');
      await waitText(page, 0, 'reconnecting', (_, t) => t.state === 'reconnecting' && /\([0-3]s left\)/.test(t.stats.banner), 15_000);
      // Broken until the page gives up (3 s after the drop).
      const t = await waitText(page, 0, 'the ending', (text, t) =>
        t.state === 'ended' && text.includes('The session could not be resumed'), 30_000);
      if (!t.stats.lastNotice.includes('resume window (3s)')) throw new Error(`notice ${t.stats.lastNotice}`);
      if (!t.text.includes('Press Enter to reconnect (a new session).')) throw new Error('no new session offered');
      if (t.stats.reconnecting || (await page.locator('.pane:not([hidden]) .reconnect-banner').isVisible())) throw new Error('still reconnecting');
      await shot(page, 'resume-window-over');
      await proxy('restore');
      // podgate ended the old session: none of admin's is live (its process is gone).
      await until('the old session ended in podgate', async () => {
        const r = await page.evaluate(async () => (await fetch('/podgate/sessions', { headers: { Accept: 'application/json' } })).json());
        return r.items.length === 0;
      }, 30_000);
      await type(page, '\r');
      await until('a new session', async () => {
        const x = await tab(page, 0);
        return x.state === 'open' && x.stats.sessions === 2;
      });
      await ready(page, 0);
      const secondPid = await pid(page, 'second');
      if (secondPid === firstPid) throw new Error('the same shell after the window ended');
    } finally {
      await page.close();
    }
  });
}

async function overflowGroup() {
  await scenario('output past a full buffer (overwrite) while dropped: the skipped bytes are reported and the screen redrawn', async () => {
    const { page, hello } = await openShell();
    try {
      if (hello.buffer_bytes > 64 * 1024) throw new Error(`buffer ${hello.buffer_bytes}: the test set 16 KiB`);
      // About 42 KB/s: lines of 200 zeros, 10 lines every 50 ms.
      await type(page, "s=$(printf '%0200d' 0); i=0; while :; do i=$((i+1)); echo \"f=$i $s\"; [ $((i % 10)) = 0 ] && sleep 0.05; done\r");
      await waitText(page, 0, 'the flood', (text) => numbered(text, 'f=').length >= 100);
      const { rows, cols } = await tab(page, 0);
      await proxy('break');
      await proxy('reset');
      await waitText(page, 0, 'reconnecting', (_, t) => t.state === 'reconnecting', 15_000);
      // Down for 3 s on purpose: some 120 KB of output, far past the 16 KiB kept.
      await new Promise((r) => setTimeout(r, 3_000));
      await proxy('restore');
      const t = await waitText(page, 0, 'the resume with a gap', (text, t) =>
        t.stats.resumes === 1 && t.stats.lastGap > 0 && text.includes('bytes of output skipped while disconnected'), 60_000);
      const gap = t.stats.lastGap;
      // The line says how many.
      if (!t.text.includes(`[podgate: ${gap.toLocaleString('en-US')} bytes of output skipped`)) throw new Error(`the line does not say ${gap}`);
      // The size went first, with a nudge: one row less, then the real size.
      const rs = t.stats.resizes.slice(-2);
      if (rs.length !== 2 || rs[0].rows !== rows - 1 || rs[1].rows !== rows || rs[0].cols !== cols) {
        throw new Error(`resizes after the resume: ${JSON.stringify(t.stats.resizes)}`);
      }
      await shot(page, 'resume-gap');
      await waitText(page, 0, 'the flood after the resume', (text) => {
        const ns = numbered(text, 'f=');
        return ns.length > 0 && ns.at(-1) > (numbered(t.text, 'f=').at(-1) ?? 0) + 100;
      });
      await press(page, 'Control+C');
      await type(page, 'echo flood-stopped\r');
      await waitText(page, 0, 'the flood stopped', hasLine('flood-stopped'));
      // The numbers: in order, none twice, one run missing where the gap was, about as many
      // bytes as reported (a line cut at either edge aside).
      const ns = numbered((await tab(page, 0)).text, 'f=');
      const jumps = [];
      for (let i = 1; i < ns.length; i++) {
        if (ns[i] <= ns[i - 1]) throw new Error(`f=${ns[i]} after f=${ns[i - 1]}: out of order or twice`);
        if (ns[i] !== ns[i - 1] + 1) jumps.push([ns[i - 1], ns[i]]);
      }
      if (jumps.length !== 1) throw new Error(`expected one run missing, got ${JSON.stringify(jumps)}`);
      const [from, to] = jumps[0];
      const lineBytes = (i) => `f=${i} `.length + 200 + 2; // the tty's CRLF
      let missing = 0;
      for (let i = from + 1; i < to; i++) missing += lineBytes(i);
      if (Math.abs(missing - gap) > 2 * lineBytes(to)) {
        throw new Error(`lines f=${from + 1}..f=${to - 1} are missing (${missing} bytes), podgate reported ${gap}`);
      }
      console.log(`  gap ${gap} bytes, f=${from + 1}..f=${to - 1} missing (${missing} bytes)`);
    } finally {
      await page.close();
    }
  });
}

if (GROUP === 'resume') await resumeGroup();
if (GROUP === 'window') await windowGroup();
if (GROUP === 'overflow') await overflowGroup();

await scenario('no errors in the page console', async () => {
  // A dropped WebSocket is reported by Chromium itself ("WebSocket connection to ... failed"):
  // that is the fault the test made, not the page's.
  const own = errors.filter((e) => !/WebSocket connection to .* failed/.test(e) && !/net::ERR_/.test(e) && !/Failed to load resource/.test(e));
  if (own.length) throw new Error(own.join('\n'));
});
await finish([adminCtx]);
