// What a person reads when a terminal cannot open or ends: the gateway's and the cluster's
// own words, with a heading that says what kind of problem it is.

import type { K8sStatus } from './protocol';

export interface Notice {
  title: string;
  detail: string;
  /// Whether pressing Enter might help (a new session), shown as a hint.
  retry: boolean;
}

/// A refusal before the WebSocket opened, from the probe of the same exec URL.
export function refusal(code: number, st: K8sStatus | null): Notice {
  const detail = st?.message ?? `HTTP ${code}`;
  switch (code) {
    case 401:
      return { title: 'Not logged in', detail: 'Your login has expired: reload the page to log in again.', retry: true };
    case 403:
      return { title: 'Forbidden', detail, retry: false };
    case 404:
      return { title: 'Not found', detail, retry: false };
    case 429:
      return { title: 'Session limit reached', detail, retry: true };
    case 502:
    case 503:
    case 504:
      return st?.reason === 'TooManyRequests'
        ? { title: 'Session limit reached', detail, retry: true }
        : { title: 'Cluster unreachable', detail, retry: true };
    case 400:
      if (/upgrade request required/i.test(detail)) {
        // The probe passed every check the cluster makes, so the gateway refused the
        // upgrade itself: its session or connection limit.
        return {
          title: 'podgate refused the session',
          detail:
            'The pod and container are reachable, but podgate would not open another session: a session limit is most likely reached. Close another terminal and try again.',
          retry: true,
        };
      }
      // kube-apiserver's words for a container the pod does not have.
      if (/container .* is not valid for pod/.test(detail)) return { title: 'Container not found', detail, retry: false };
      return { title: 'Bad request', detail, retry: false };
    default:
      return { title: `Could not open the terminal (HTTP ${code})`, detail, retry: true };
  }
}

/// How a session that did open ended: `st` is the last Status on stream 3, if any.
export function ending(st: K8sStatus | null, exitCode: number | null, closeReason: string): Notice {
  if (exitCode !== null) {
    return { title: `process exited with code ${exitCode}`, detail: '', retry: true };
  }
  const message = st?.message || closeReason;
  // The gateway refuses a browser's session past its limits inside the socket (a refused
  // handshake would hide its reason from the page).
  if (st?.reason === 'TooManyRequests') {
    return { title: 'Session limit reached', detail: message, retry: true };
  }
  if (/maximum session duration/.test(message)) {
    return { title: 'Maximum session duration reached', detail: message, retry: true };
  }
  if (st?.reason === 'Timeout' || /idle timeout/.test(message)) {
    return { title: 'Idle timeout', detail: message, retry: true };
  }
  if (message) return { title: 'Session ended', detail: message, retry: true };
  return { title: 'Connection lost', detail: 'The connection to podgate closed without an exit status.', retry: true };
}
