// Bundles tests/*.test.ts (each on its own) for node (esbuild, as the app is built) and runs it with node's
// test runner; exits non-zero when a test fails. Run by tests/tests/ui.rs.
import * as esbuild from 'esbuild';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'podgate-web-unit-'));
try {
  const files = readdirSync(here).filter((f) => f.endsWith('.test.ts')).sort();
  const outs = [];
  for (const f of files) {
    const out = join(dir, f.replace(/\.ts$/, '.mjs'));
    await esbuild.build({
      entryPoints: [join(here, f)],
      bundle: true,
      platform: 'node',
      format: 'esm',
      outfile: out,
      logLevel: 'warning',
    });
    outs.push(out);
  }
  const run = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...outs], { stdio: 'inherit' });
  process.exitCode = run.status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
