// What a person reads when a terminal cannot open or ends: a heading that says what kind of
// problem it is, over the gateway's and the cluster's own words.
//
// The heading is chosen from structure only, never from the English of a message: podgate's
// outcome cause when the `Status` carries one (every `Status` podgate writes itself does),
// else the HTTP code and the `Status` reason (a cluster's own refusal), else the WebSocket's
// close code. The message is shown as it was written, under the heading.

import type { Pod } from './api';
import { exitCodeOf, type K8sStatus } from './protocol';

export interface Notice {
  title: string;
  detail: string;
  /// Whether pressing Enter might help (a new session), shown as a hint.
  retry: boolean;
  /// How the title is coloured: a clean exit, another exit, or (by default) a problem.
  tone?: 'ok' | 'exit';
}

/// The `details.causes[].reason` under which podgate names its outcome.
export const OUTCOME_CAUSE = 'podgate.io/outcome';

/// podgate's outcomes (its `podgate_sessions_total{outcome}` vocabulary).
export type Outcome =
  | 'completed' | 'exit_nonzero'
  | 'client_closed' | 'client_unresponsive' | 'client_error'
  | 'upstream_closed' | 'upstream_lost' | 'upstream_error'
  | 'idle_timeout' | 'max_duration' | 'shutdown' | 'credential_expired' | 'access_revoked'
  | 'terminated' | 'recording_failed'
  | 'denied' | 'limit_reached' | 'bad_request';

/// podgate's outcome in `st`, when podgate wrote it (a cluster's own `Status` has none).
export function outcomeOf(st: K8sStatus | null | undefined): string | null {
  return st?.details?.causes?.find((c) => c.reason === OUTCOME_CAUSE)?.message ?? null;
}

/// What a session's pod says about the container it names, for a 400 from the exec probe.
/// - `missing`: the pod has no container (nor init nor ephemeral one) of that name;
/// - `present`: it has it (or none was named and the pod has just one container);
/// - `unnamed`: none was named and the pod has several (the cluster wants a name);
/// - `unknown`: the pod could not be read.
export type ContainerCheck = 'missing' | 'present' | 'unnamed' | 'unknown';

/// Every container name of `pod`: its containers, init and ephemeral containers.
export function containerNames(pod: Pod): string[] {
  const s = pod.spec;
  return [...(s?.containers ?? []), ...(s?.initContainers ?? []), ...(s?.ephemeralContainers ?? [])].map((c) => c.name);
}

export function checkContainer(pod: Pod | null, container: string | undefined): ContainerCheck {
  if (!pod) return 'unknown';
  if (!container) return pod.spec?.containers?.length === 1 ? 'present' : 'unnamed';
  return containerNames(pod).includes(container) ? 'present' : 'missing';
}

const LOGIN_EXPIRED = 'Your login has expired: reload the page to log in again.';

/// The notice for one of podgate's outcomes; null for an outcome this UI does not know (a
/// newer gateway's), which then falls back to the code and reason.
function byOutcome(outcome: string, detail: string, when: 'refusal' | 'ending'): Notice | null {
  switch (outcome as Outcome) {
    case 'idle_timeout':
      return { title: 'Idle timeout', detail, retry: true };
    case 'max_duration':
      return { title: 'Maximum session duration reached', detail, retry: true };
    case 'limit_reached':
      return { title: 'Session limit reached', detail, retry: true };
    case 'shutdown':
      // The gateway going away (a restart or a rollout): a new session in a moment works.
      return { title: 'podgate is restarting', detail, retry: true };
    case 'credential_expired':
      return { title: 'Login expired', detail: join(detail, 'Sign in again: reload the page.'), retry: false };
    case 'access_revoked':
      return { title: 'Access revoked', detail, retry: false };
    case 'terminated':
      // The detail names who ended it and why.
      return { title: 'Ended by an operator', detail, retry: false };
    case 'recording_failed':
      // This cluster records every session: none runs while its recording cannot.
      return when === 'refusal'
        ? { title: 'Recording unavailable', detail, retry: true }
        : { title: 'Recording failed', detail, retry: true };
    case 'denied':
      return { title: 'Forbidden', detail, retry: false };
    case 'bad_request':
      return { title: 'Bad request', detail, retry: false };
    case 'upstream_lost':
      return { title: 'Connection to the cluster lost', detail, retry: true };
    case 'upstream_error':
      // Before a session: podgate could not reach the cluster (or its request failed). In one:
      // the cluster broke the protocol or failed without an exit status.
      return when === 'refusal'
        ? { title: 'Cluster unreachable', detail, retry: true }
        : { title: 'Session ended', detail, retry: true };
    case 'client_unresponsive':
      return { title: 'Connection lost', detail, retry: true };
    case 'upstream_closed':
    case 'client_closed':
    case 'client_error':
      return { title: 'Session ended', detail, retry: true };
    case 'completed':
    case 'exit_nonzero':
      // The exit code is read from the Status itself (see `ending`); a refusal never has one.
      return null;
    default:
      return null;
  }
}

function join(a: string, b: string): string {
  return a ? `${a}\n${b}` : b;
}

/// A refusal before the WebSocket opened: the HTTP code and `Status` the probe of the same exec
/// URL was answered with, and for a 400 what the pod says about the container.
export function refusal(code: number, st: K8sStatus | null, container: ContainerCheck = 'unknown'): Notice {
  const detail = st?.message ?? `HTTP ${code}`;
  const outcome = outcomeOf(st);
  const told = outcome !== null ? byOutcome(outcome, detail, 'refusal') : null;
  if (told) return told;
  const reason = st?.reason ?? '';
  if (code === 401 || reason === 'Unauthorized') return { title: 'Not logged in', detail: LOGIN_EXPIRED, retry: true };
  if (reason === 'TooManyRequests' || code === 429) return { title: 'Session limit reached', detail, retry: true };
  if (code === 403 || reason === 'Forbidden') return { title: 'Forbidden', detail, retry: false };
  if (code === 404 || reason === 'NotFound') return { title: 'Not found', detail, retry: false };
  if (code === 502 || code === 503 || code === 504 || reason === 'ServiceUnavailable' || reason === 'Timeout') {
    return { title: 'Cluster unreachable', detail, retry: true };
  }
  if (code === 400 && outcome === null) {
    // The cluster's own 400 to the plain GET. For exec it answers 400 for three things only:
    // a container the pod does not have, no container named where the pod has several, and,
    // once everything else passed, a request that is no upgrade (the UI always sends a
    // command and stdin/stdout, so the option checks pass). The pod, read as the person,
    // tells which without reading the cluster's English.
    switch (container) {
      case 'missing':
        return { title: 'Container not found', detail, retry: false };
      case 'present':
        // The exec would be allowed: the cluster stopped only at the missing upgrade. Yet the
        // WebSocket to the same URL, with the same cookie, failed before it opened (a browser
        // sees only close code 1006 for any refused handshake, whoever refused it). The probe
        // meets podgate's login check and edge policy (refusals marked with its cause, told
        // apart above) and the cluster's checks of the person, the pod and the container; and
        // podgate's session limits refuse a browser inside the socket, so they are not it
        // either. What is left is met only by an upgrade: podgate at its limit of open
        // connections (a WebSocket needs a new connection; the probe rides one already open),
        // or a proxy in front of podgate that does not pass WebSockets. (One cluster check is
        // also met only by an upgrade: a cluster that wants `create` on pods/exec for WebSocket
        // upgrades, not just the `get` a plain GET is checked for; the detail names it.)
        return {
          title: 'podgate refused the session',
          detail:
            'The pod and container are there and you may read their exec endpoint, but the terminal\'s connection was refused before it opened: podgate may be at its connection limit (close another terminal and try again), a proxy in front of it may not pass WebSockets, or the cluster may want the create permission on pods/exec as well.',
          retry: true,
        };
      default:
        return { title: 'Bad request', detail, retry: false };
    }
  }
  if (code === 400 || reason === 'BadRequest') return { title: 'Bad request', detail, retry: false };
  return { title: `Could not open the terminal (HTTP ${code})`, detail, retry: true };
}

/// How the WebSocket closed.
export interface Close {
  code: number;
  reason: string;
}

/// How a session that did open ended: `st` is the last Status on stream 3, if any; `close` the
/// close frame (1006 when the connection died without one).
export function ending(st: K8sStatus | null, close: Close): Notice {
  const exitCode = st ? exitCodeOf(st) : null;
  if (exitCode !== null) {
    return { title: `process exited with code ${exitCode}`, detail: '', retry: true, tone: exitCode === 0 ? 'ok' : 'exit' };
  }
  const message = st?.message || close.reason;
  const outcome = outcomeOf(st);
  const told = outcome !== null ? byOutcome(outcome, message, 'ending') : null;
  if (told) return told;
  if (st) {
    // A Status without podgate's cause: the cluster's (or an older podgate's) words.
    switch (st.reason) {
      case 'TooManyRequests':
        // The gateway refuses a browser's session past its limits inside the socket (a refused
        // handshake would hide its reason from the page).
        return { title: 'Session limit reached', detail: message, retry: true };
      case 'Timeout':
        return { title: 'Session timed out', detail: message, retry: true };
      case 'Unauthorized':
        return { title: 'Login expired', detail: join(message, 'Sign in again: reload the page.'), retry: false };
      case 'Forbidden':
        return { title: 'Forbidden', detail: message, retry: false };
      case 'NotFound':
        return { title: 'Not found', detail: message, retry: false };
    }
    return { title: 'Session ended', detail: message || 'The cluster ended the session without an exit status.', retry: true };
  }
  if (close.code === 1006) {
    return { title: 'Connection lost', detail: 'The connection to podgate closed without an exit status.', retry: true };
  }
  if (close.code === 1011) return { title: 'Connection to the cluster lost', detail: message, retry: true };
  return {
    title: 'Session ended',
    detail: message || `The session closed without an exit status (WebSocket close code ${close.code}).`,
    retry: true,
  };
}
