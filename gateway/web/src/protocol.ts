// The v5.channel.k8s.io framing (docs/protocol.md): binary frames whose first byte is the stream.

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
export const STATUS = 3;
export const RESIZE = 4;
export const CLOSE = 255;
export const SUBPROTOCOL = 'v5.channel.k8s.io';

/// A Kubernetes `metav1.Status`, as the API answers errors and as exec reports its end.
export interface K8sStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; kind?: string; causes?: { reason?: string; message?: string }[] };
}

export function frame(stream: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 1);
  out[0] = stream;
  out.set(payload, 1);
  return out;
}

const encoder = new TextEncoder();

export function resizeFrame(cols: number, rows: number): Uint8Array {
  return frame(RESIZE, encoder.encode(JSON.stringify({ Width: cols, Height: rows })));
}

export function stdinFrame(data: string | Uint8Array): Uint8Array {
  return frame(STDIN, typeof data === 'string' ? encoder.encode(data) : data);
}

/// The exit code in an exec's final Status: 0 for Success, N for NonZeroExitCode, else null
/// (a failure that is not a process exit, like the gateway's idle timeout).
export function exitCodeOf(s: K8sStatus): number | null {
  if (s.status === 'Success') return 0;
  if (s.reason !== 'NonZeroExitCode') return null;
  const cause = s.details?.causes?.find((c) => c.reason === 'ExitCode');
  const n = cause?.message !== undefined ? Number.parseInt(cause.message, 10) : NaN;
  return Number.isFinite(n) ? n : null;
}

export function parseStatus(bytes: Uint8Array | string): K8sStatus | null {
  try {
    const text = typeof bytes === 'string' ? bytes : new TextDecoder().decode(bytes);
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' ? (v as K8sStatus) : null;
  } catch {
    return null;
  }
}

/// Whether `b` ends inside a multi-byte UTF-8 character (counted for tests: proof that a
/// character really arrived split across frames).
export function endsMidCharacter(b: Uint8Array): boolean {
  for (let i = b.length - 1, back = 0; i >= 0 && back < 4; i--, back++) {
    const c = b[i];
    if ((c & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return back + 1 < need;
  }
  return false;
}
