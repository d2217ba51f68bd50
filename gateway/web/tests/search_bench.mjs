// The pod search's speed in real Chromium, against a gateway in front of two clusters of about
// 5,000 pods each (tests/tests/ui_search.rs, its ignored bench test, starts it):
//   - time to first results: from the query's input (pasted whole) to the first rows shown, with the
//     clusters' indexes cold (the search opens them: paged list of every pod), then warm (a
//     new page, the indexes open);
//   - keystroke latency: typing queries one key at a time, from each key to its results
//     shown (the page's own measure, search.ts `stats.lastLatencyMs`), median, p95 and max.
// Prints the figures and writes them as JSON to PODGATE_BENCH_OUT. No assertion on time.
import { writeFileSync } from 'node:fs';
import { BASE, devLogin, finish, firstPage, launch, scenario, until } from './driver.mjs';

const ADMIN = 'podgate-demo-admin';
const OUT = process.env.PODGATE_BENCH_OUT;

const stats = (page) => page.evaluate(() => {
  const list = document.getElementById('pod-search-results');
  return { ...window.podgate.view().search, rows: list?.querySelectorAll('.pod-hit').length ?? 0 };
});

async function clusters(page) {
  // Both clusters are searched: the chosen one and a recent one (kept in the browser).
  await page.evaluate(() => localStorage.setItem('podgate.recentClusters', JSON.stringify(['dev-east', 'dev-west'])));
}

/// Types `text` key by key, each key's results shown before the next; the latencies (ms).
async function typeMeasured(page, text) {
  const out = [];
  let typed = '';
  for (const ch of text) {
    typed += ch;
    await page.keyboard.type(ch);
    const want = typed.trim();
    const s = await until(`results for ${want}`, async () => {
      const x = await stats(page);
      return x.renderedFor === want && x.lastLatencyMs >= 0 ? x : null;
    }, 30_000);
    out.push(s.lastLatencyMs);
  }
  return out;
}

/// The whole query at once (one input event, as a paste): the time from it to the first rows
/// shown, and to an answer with every cluster's index complete (no "still loading").
async function firstResults(page, text) {
  const t0 = Date.now();
  await page.keyboard.insertText(text);
  const s = await until('first results', async () => {
    const x = await stats(page);
    return x.renderedFor === text && x.rows > 0 ? x : null;
  }, 60_000);
  const first = { wallMs: Date.now() - t0, pageMs: s.lastLatencyMs };
  await until('every index complete', async () => {
    const x = await stats(page);
    const status = await page.evaluate(() => document.getElementById('pod-search-status')?.textContent ?? '');
    return x.renderedFor === text && x.rows > 0 && !status.includes('still loading');
  }, 60_000);
  return { ...first, completeMs: Date.now() - t0 };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const round = (x) => Math.round(x * 10) / 10;

await scenario('bench', async () => {
  const ctx = await launch();
  const page = await firstPage(ctx, []);
  await devLogin(page, BASE, ADMIN);
  await clusters(page);
  await page.reload();
  await until('the search box focused', async () => page.evaluate(() => document.activeElement?.id === 'pod-search'));
  const cold = await firstResults(page, 'api-6b7c9-4');
  const counts = await page.evaluate(() => document.getElementById('pod-search-status')?.textContent ?? '');
  await page.reload();
  await until('the search box focused', async () => page.evaluate(() => document.activeElement?.id === 'pod-search'));
  const warm = await firstResults(page, 'worker-17');
  const latencies = [];
  for (const q of ['api-6b7c9-2345', 'worker-1999', 'app=api node-2', 'team-b nightly']) {
    await page.keyboard.press('Escape');
    await until('cleared', async () => (await stats(page)).renderedFor === '');
    latencies.push(...(await typeMeasured(page, q)));
  }
  const result = {
    pods_per_cluster: 5000,
    clusters: 2,
    first_results_cold_ms: round(cold.pageMs),
    first_results_cold_wall_ms: cold.wallMs,
    complete_cold_wall_ms: cold.completeMs,
    first_results_warm_ms: round(warm.pageMs),
    keystrokes: latencies.length,
    keystroke_median_ms: round(pct(latencies, 50)),
    keystroke_p95_ms: round(pct(latencies, 95)),
    keystroke_max_ms: round(Math.max(...latencies)),
    status_after_cold: counts,
  };
  console.log(`search bench: ${JSON.stringify(result)}`);
  if (OUT) writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n');
  await ctx.close();
});

await finish([]);
