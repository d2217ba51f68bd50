// Builds the browser terminal into dist/: index.html plus content-hashed assets under
// dist/assets/ (so the gateway can cache them forever and index.html never). The gateway
// embeds dist/ in its binary (gateway/build.rs). Run by `make web`.
import * as esbuild from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, 'assets'), { recursive: true });

const result = await esbuild.build({
  entryPoints: { app: join(here, 'src/main.ts'), style: join(here, 'src/style.css') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  outdir: join(dist, 'assets'),
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
});

const outputs = Object.entries(result.metafile.outputs);
const find = (entry, ext) => {
  const hit = outputs.find(([file, o]) => file.endsWith(ext) && o.entryPoint && o.entryPoint.endsWith(entry));
  if (!hit) throw new Error(`esbuild produced no ${ext} for ${entry}`);
  return 'assets/' + basename(hit[0]);
};
const html = readFileSync(join(here, 'index.html'), 'utf8')
  .replace('__APP_JS__', '/' + find('src/main.ts', '.js'))
  .replace('__APP_CSS__', '/' + find('src/style.css', '.css'));
writeFileSync(join(dist, 'index.html'), html);
// Gzipped twins of the scripts and styles, served to browsers that accept gzip (about a
// quarter of the size; the gateway itself compresses nothing).
for (const [file] of outputs) {
  if (/\.(js|css)$/.test(file)) writeFileSync(`${file}.gz`, gzipSync(readFileSync(file), { level: 9 }));
}
console.log(`web: built ${outputs.length} assets into ${dist}`);
