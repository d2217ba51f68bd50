// The pre-flight: before the picker opens a shell, it asks the cluster (a
// SelfSubjectAccessReview, through podgate as the person) whether the person may exec into
// the chosen pod, and says why not in the picker instead of failing after the click.

import { clusterPath } from './api';
import { parseStatus } from './protocol';
import type { Target } from './route';

/// The review to post. The browser's shell is a WebSocket exec, an HTTP GET upgraded, and
/// kube-apiserver authorizes that as `get` on `pods/exec` (a SPDY exec, a POST, as `create`);
/// so the question is the one the cluster will ask when the shell opens: `get`. (Kubernetes
/// 1.35 also checks `create` on WebSocket upgrades, AuthorizePodWebsocketUpgradeCreatePermission;
/// a refusal of that one still shows in the terminal after the click.)
export function execReview(t: Pick<Target, 'namespace' | 'pod'>): object {
  return {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    spec: {
      resourceAttributes: { verb: 'get', group: '', resource: 'pods', subresource: 'exec', namespace: t.namespace, name: t.pod },
    },
  };
}

export const REVIEW_PATH = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';

/// What the pre-flight found: `denied` blocks the click with `message`; `unknown` (the review
/// itself failed: an older cluster, podgate unreachable) lets the click go on, and the
/// terminal says what the cluster says then.
export type Verdict =
  | { kind: 'allowed' }
  | { kind: 'denied'; message: string }
  | { kind: 'unknown'; message: string };

interface ReviewAnswer {
  status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string };
}

/// Reads the cluster's answer (HTTP `code`, body `text`) to [`execReview`] for `t`.
export function verdict(t: Pick<Target, 'cluster' | 'namespace' | 'pod'>, code: number, text: string): Verdict {
  if (code < 200 || code > 299) {
    const s = parseStatus(text);
    return { kind: 'unknown', message: `the access review failed: ${s?.message ?? `HTTP ${code}`}` };
  }
  let answer: ReviewAnswer;
  try {
    answer = JSON.parse(text) as ReviewAnswer;
  } catch {
    return { kind: 'unknown', message: 'the access review answer is not JSON' };
  }
  const status = answer?.status;
  if (typeof status?.allowed !== 'boolean') return { kind: 'unknown', message: 'the access review answer has no verdict' };
  if (status.allowed) return { kind: 'allowed' };
  const why = [status.reason, status.evaluationError].filter((s): s is string => typeof s === 'string' && s.trim() !== '');
  return {
    kind: 'denied',
    message: `You may not open a shell in ${t.namespace}/${t.pod} on ${t.cluster}: the cluster answers that you cannot get pods/exec there` +
      (why.length ? ` (${why.join('; ')}).` : ' (it gave no reason).'),
  };
}

/// Asks the cluster about `t`.
export async function preflight(t: Pick<Target, 'cluster' | 'namespace' | 'pod'>): Promise<Verdict> {
  try {
    const resp = await fetch(clusterPath(t.cluster, REVIEW_PATH), {
      method: 'POST',
      credentials: 'same-origin',
      headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
      body: JSON.stringify(execReview(t)),
    });
    return verdict(t, resp.status, await resp.text());
  } catch (e) {
    return { kind: 'unknown', message: `podgate cannot be reached: ${String(e)}` };
  }
}
