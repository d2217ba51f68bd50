// The file panel's pure logic (files.ts): the gateway's URL for a container's file, paths,
// sizes and progress in words, the limits, and what an error answer says. Unit-tested in
// tests/files.test.ts.

/// `files.max_upload` / `files.max_download`, as `GET /podgate/files` tells them.
export interface Limits {
  max_upload: number;
  max_download: number;
}

/// The gateway's URL for `path` in a container (GET downloads it, PUT uploads to it).
export function fileUrl(cluster: string, namespace: string, pod: string, container: string | undefined, path: string): string {
  const q = new URLSearchParams();
  if (container) q.set('container', container);
  q.set('path', path);
  const e = encodeURIComponent;
  return `/podgate/clusters/${e(cluster)}/namespaces/${e(namespace)}/pods/${e(pod)}/file?${q.toString()}`;
}

/// Why `path` cannot name a file in the container ('' when it can): absolute, not a directory.
export function pathProblem(path: string): string {
  if (!path) return 'Enter the file\'s absolute path, like /tmp/report.csv';
  if (!path.startsWith('/')) return `The path must be absolute (start with /): ${path}`;
  if (path.includes('\0')) return 'The path must not contain NUL';
  const last = path.slice(path.lastIndexOf('/') + 1);
  if (!last || last === '.' || last === '..') return `The path must name a file, not a directory: ${path}`;
  return '';
}

/// `dir` and a file `name` as one absolute path (`/tmp` + `a.txt` is `/tmp/a.txt`).
export function joinPath(dir: string, name: string): string {
  const d = dir.trim() || '/';
  const base = name.replace(/[/\\]/g, '_');
  return d.endsWith('/') ? d + base : `${d}/${base}`;
}

/// The last part of a path: the name a download is saved as.
export function baseName(path: string): string {
  const b = path.slice(path.lastIndexOf('/') + 1);
  return b || 'download';
}

/// A size in bytes as people read it: 512 B, 1.5 KiB, 3.0 MiB, 2.00 GiB.
export function sizeText(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '? B';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 && i >= 1 ? 2 : 1)} ${units[i]}`;
}

/// How far a transfer is: `1.5 MiB of 3.0 MiB (50%)`, or just what moved when the total is unknown.
export function progressText(done: number, total: number | null): string {
  if (total === null || total <= 0) return total === 0 ? '0 B of 0 B (100%)' : sizeText(done);
  const pct = Math.min(100, Math.floor((done / total) * 100));
  return `${sizeText(done)} of ${sizeText(total)} (${pct}%)`;
}

/// The page's own check of a file against podgate's limit ('' when it fits). podgate enforces
/// the limit itself; this only saves sending a file that would be refused.
export function tooLarge(size: number, limit: number | undefined, what: 'upload' | 'download'): string {
  if (limit === undefined) return '';
  if (limit === 0) return `podgate does not allow file ${what}s here`;
  if (size > limit) return `The file is ${sizeText(size)}; podgate allows ${sizeText(limit)} per ${what}`;
  return '';
}

/// The `podgate.io/file-error` cause of a Status (`no_tar`, `read_only`, ...), if any.
export function fileErrorCause(body: string): string {
  try {
    const v = JSON.parse(body) as { details?: { causes?: { reason?: string; message?: string }[] } };
    const c = v?.details?.causes?.find((x) => x.reason === 'podgate.io/file-error');
    return c?.message ?? '';
  } catch {
    return '';
  }
}

/// What a failed transfer's answer says: the Status message (podgate's words for tar's failure,
/// or the cluster's refusal), else the body, else the code.
export function fileErrorText(code: number, body: string): string {
  try {
    const v = JSON.parse(body) as { message?: string };
    if (v && typeof v.message === 'string' && v.message) return v.message;
  } catch {
    // not JSON
  }
  const t = body.trim();
  if (code === 413) return 'The file is larger than podgate allows';
  if (code === 0) return 'The connection to podgate broke during the transfer';
  return t ? `${code}: ${t.slice(0, 500)}` : `The transfer failed (${code})`;
}

/// The limits from `GET /podgate/files`, or null when the answer is not them.
export function parseLimits(body: string): Limits | null {
  try {
    const v = JSON.parse(body) as Partial<Limits>;
    if (typeof v.max_upload === 'number' && typeof v.max_download === 'number') {
      return { max_upload: v.max_upload, max_download: v.max_download };
    }
  } catch {
    // not JSON
  }
  return null;
}
