// The pod search in real Chromium (gateway/web/src/search.ts): pods across namespaces and
// clusters among thousands, keyboard only (type, ↓, Enter) opening a shell on the chosen pod,
// nothing preselected, Escape clearing. Run by tests/tests/ui_search.rs with
//   PODGATE_URL          https://127.0.0.1:PORT of a gateway in front of dev-east and dev-west
//   PODGATE_SCREENSHOTS  directory for screenshots
//   PODGATE_ONLY         optional: a substring of the scenario names to run
// Prints "ok - NAME" / "FAIL - NAME: why" and "N passed, N failed".
import { BASE, devLogin, finish, firstPage, launch, ready, scenario, shot, until, view } from './driver.mjs';

const ADMIN = 'podgate-demo-admin';
const CAROL = 'pod-search-carol';
const errors = [];
const ctx = await launch();
const page = await firstPage(ctx, errors);

/// The rows shown, and for which text.
const results = () => page.evaluate(() => {
  const list = document.getElementById('pod-search-results');
  return {
    for: list?.dataset.renderedFor ?? null,
    status: document.getElementById('pod-search-status')?.textContent ?? '',
    focused: document.activeElement?.id ?? '',
    selected: Array.from(list?.querySelectorAll('[aria-selected=true]') ?? [], (r) => r.id),
    rows: Array.from(list?.querySelectorAll('.pod-hit') ?? [], (r) => ({
      cluster: r.querySelector('.hit-cluster')?.textContent,
      namespace: r.querySelector('.hit-ns')?.textContent,
      pod: r.querySelector('.hit-pod')?.textContent,
      phase: r.querySelector('.hit-phase')?.textContent,
      ready: r.querySelector('.hit-ready')?.textContent,
      owner: r.querySelector('.hit-owner')?.textContent ?? null,
    })),
  };
});
async function waitResults(what, pred) {
  return until(what, async () => {
    const r = await results();
    return pred(r) ? r : null;
  }).catch(async (e) => {
    throw new Error(`${e.message}\n--- results ---\n${JSON.stringify(await results().catch(() => null), null, 1)?.slice(0, 3000)}`);
  });
}

await scenario('search across namespaces among thousands of pods', async () => {
  await devLogin(page, BASE, ADMIN);
  // The box has the focus when the picker shows: typing goes there, no click needed.
  await until('the search box focused', async () => (await results()).focused === 'pod-search');
  await page.keyboard.type('api-6b7c9-42');
  const r = await waitResults('api pods of team-a', (x) => x.for === 'api-6b7c9-42' && x.rows.length > 0);
  if (r.rows[0].pod !== 'api-6b7c9-42') throw new Error(`the exact name is not first: ${JSON.stringify(r.rows[0])}`);
  if (!r.rows.every((x) => x.namespace === 'team-a' && x.owner === 'Deployment/api')) throw new Error(JSON.stringify(r.rows));
  if (r.selected.length) throw new Error(`a result is preselected: ${r.selected}`);
  // Other namespaces by label and owner.
  await page.keyboard.press('Escape');
  await waitResults('cleared', (x) => x.for === '' && x.rows.length === 0);
  await page.keyboard.type('app=worker nightly');
  const w = await waitResults('workers of team-b', (x) => x.for === 'app=worker nightly' && x.rows.length > 0);
  if (!w.rows.every((x) => x.namespace === 'team-b' && x.owner === 'Job/nightly')) throw new Error(JSON.stringify(w.rows.slice(0, 3)));
  if (!/Showing \d+ of \d+/.test(w.status)) throw new Error(`no count of the rest: ${w.status}`);
  await shot(page, 'search-namespaces');
});

await scenario('keyboard-only navigation opens a shell on the chosen pod', async () => {
  await page.keyboard.press('Escape');
  await waitResults('cleared', (x) => x.for === '');
  await page.keyboard.type('shell-0');
  const r = await waitResults('shell-0', (x) => x.for === 'shell-0' && x.rows.some((y) => y.pod === 'shell-0'));
  const i = r.rows.findIndex((y) => y.pod === 'shell-0' && y.namespace === 'default');
  if (i < 0) throw new Error(JSON.stringify(r.rows));
  // Enter before any move opens nothing.
  await page.keyboard.press('Enter');
  if ((await view(page)).tabs.length !== 0) throw new Error('Enter opened a pod nobody chose');
  for (let k = 0; k <= i; k++) await page.keyboard.press('ArrowDown');
  const moved = await results();
  if (moved.selected[0] !== `pod-hit-${i}`) throw new Error(`selected ${moved.selected}`);
  await page.keyboard.press('ArrowUp');
  await page.keyboard.press('ArrowDown');
  const chosen = r.rows[i];
  await page.keyboard.press('Enter');
  await until('a terminal', async () => (await view(page)).tabs.length === 1);
  const t = (await view(page)).tabs[0];
  if (t.target.cluster !== chosen.cluster || t.target.namespace !== 'default' || t.target.pod !== 'shell-0') {
    throw new Error(`opened ${JSON.stringify(t.target)}`);
  }
  await ready(page, 0);
  await shot(page, 'search-opened-shell');
});

await scenario('search across the chosen cluster and the recent ones', async () => {
  await page.locator('#tab-new').click();
  await until('the search box focused', async () => (await results()).focused === 'pod-search');
  // The terminal just opened was on dev-east (recent); choose dev-west in the picker.
  const first = (await view(page)).tabs[0].target.cluster;
  const other = first === 'dev-east' ? 'dev-west' : 'dev-east';
  await until(`${other} offered`, async () => (await page.locator(`#pick-cluster option[value="${other}"]`).count()) > 0);
  await page.locator('#pick-cluster').selectOption(other);
  await page.locator('#pod-search').focus();
  await page.keyboard.press('Escape');
  await page.keyboard.type('shell-0');
  const r = await waitResults('shell-0 in both clusters', (x) => x.for === 'shell-0' &&
    x.rows.some((y) => y.cluster === 'dev-east') && x.rows.some((y) => y.cluster === 'dev-west'));
  if (!r.rows.every((y) => y.phase && /^\d+\/\d+$/.test(y.ready ?? ''))) throw new Error(JSON.stringify(r.rows));
  await shot(page, 'search-clusters');
});

await scenario('a person sees only the pods of the namespaces they may list', async () => {
  // carol's group may list pods in team-a only (the devclusters' rule): team-b's workers and
  // default's shells are not hers to find, in either cluster.
  const ctx2 = await launch();
  const carolErrors = [];
  const carol = await firstPage(ctx2, carolErrors);
  try {
    await devLogin(carol, BASE, CAROL);
    const mine = () => carol.evaluate(() => {
      const list = document.getElementById('pod-search-results');
      return {
        for: list?.dataset.renderedFor ?? null,
        focused: document.activeElement?.id ?? '',
        rows: Array.from(list?.querySelectorAll('.pod-hit') ?? [], (r) => ({
          cluster: r.querySelector('.hit-cluster')?.textContent,
          namespace: r.querySelector('.hit-ns')?.textContent,
          pod: r.querySelector('.hit-pod')?.textContent,
        })),
      };
    });
    await until('carol\'s search box focused', async () => (await mine()).focused === 'pod-search');
    await carol.keyboard.type('api-6b7c9-7');
    const api = await until('team-a pods for carol', async () => {
      const r = await mine();
      return r.for === 'api-6b7c9-7' && r.rows.length > 0 ? r : null;
    });
    if (!api.rows.every((x) => x.namespace === 'team-a')) throw new Error(`outside team-a: ${JSON.stringify(api.rows)}`);
    for (const q of ['app=worker', 'shell-0']) {
      await carol.keyboard.press('Escape');
      await until('cleared', async () => (await mine()).for === '');
      await carol.keyboard.type(q);
      const r = await until(`carol's answer for ${q}`, async () => {
        const x = await mine();
        return x.for === q ? x : null;
      });
      if (r.rows.length) throw new Error(`carol finds pods she may not list with ${q}: ${JSON.stringify(r.rows.slice(0, 3))}`);
    }
    // The picker's namespace list is refused to her (403, said in the page: "type one");
    // anything else in her console is an error.
    const label = await carol.locator('#pick-cluster option:checked').textContent();
    if (/unreachable/.test(label ?? '')) throw new Error(`a reachable cluster reads ${label}`);
    await shot(carol, 'search-restricted');
    const relevant = carolErrors.filter((e) => !/status of (401|403)/.test(e));
    if (relevant.length) throw new Error(relevant.join('\n'));
  } finally {
    await ctx2.close();
  }
});

await scenario('no errors in the page console', async () => {
  // The 401 before login is logged by Chromium as a failed load; anything else is an error.
  const relevant = errors.filter((e) => !/^Failed to load resource: the server responded with a status of 401/.test(e));
  if (relevant.length) throw new Error(relevant.join('\n'));
});

await finish([ctx]);
