// Bundles tests/unit.test.ts for node (esbuild, as the app is built) and runs it with node's
// test runner; exits non-zero when a test fails. Run by tests/tests/ui.rs.
import * as esbuild from 'esbuild';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'podgate-web-unit-'));
try {
  const out = join(dir, 'unit.test.mjs');
  await esbuild.build({
    entryPoints: [join(here, 'unit.test.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile: out,
    logLevel: 'warning',
  });
  const run = spawnSync(process.execPath, ['--test', '--test-reporter=spec', out], { stdio: 'inherit' });
  process.exitCode = run.status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
