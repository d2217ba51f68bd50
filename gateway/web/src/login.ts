// The login screen: the methods the gateway offers (GET /auth/methods): OIDC (a redirect to
// the provider and back), a static token where there is no OIDC login (POST /auth/token: the
// token goes in the body, never the URL, and the cookie set holds only its digest) and, in
// `podgate demo` on loopback, the demo token.

import { getJSON, type Methods } from './api';
import { h } from './dom';
import { parseStatus } from './protocol';

/// `token`: the gateway offers the token login (static tokens, no OIDC login).
export type LoginMethods = Methods & { token?: boolean };

/// A password field and a button that POST the token to `endpoint`; `onLoggedIn` on success,
/// else the gateway's message in `error`.
function tokenForm(opts: {
  endpoint: string; formClass: string; inputId: string; buttonId: string; title: string; note: string;
  placeholder: string; error: HTMLElement; onLoggedIn: () => void;
  /// The gateway's own 401 message is meant for people (the token login's is; the dev login
  /// answers a bare Unauthorized).
  readable401: boolean;
}): HTMLElement {
  const token = h('input', {
    type: 'password', id: opts.inputId, name: 'token', autocomplete: 'off', required: true,
    placeholder: opts.placeholder, spellcheck: 'false',
  });
  const submit = async (ev: Event) => {
    ev.preventDefault();
    opts.error.textContent = '';
    try {
      const resp = await fetch(opts.endpoint, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ token: token.value }),
      });
      if (resp.ok) {
        token.value = '';
        opts.onLoggedIn();
        return;
      }
      const st = parseStatus(await resp.text());
      opts.error.textContent = resp.status === 401
        ? (opts.readable401 && st?.message ? st.message : 'That token is not valid.')
        : (st?.message ?? `Login failed (HTTP ${resp.status}).`);
    } catch (e) {
      opts.error.textContent = `podgate cannot be reached: ${String(e)}`;
    }
  };
  return h('form', { class: opts.formClass, onsubmit: (ev: Event) => void submit(ev) },
    h('h2', {}, opts.title),
    h('p', { class: 'note' }, opts.note),
    h('label', { for: opts.inputId }, 'Token'),
    token,
    h('button', { type: 'submit', class: 'primary', id: opts.buttonId }, 'Log in'),
  );
}

export async function loginScreen(onLoggedIn: () => void): Promise<HTMLElement> {
  let methods: LoginMethods = { dev: false, oidc: false };
  let problem = '';
  try {
    methods = await getJSON<LoginMethods>('/auth/methods');
  } catch (e) {
    problem = `podgate did not say how to log in: ${e instanceof Error ? e.message : String(e)}`;
  }
  const error = h('p', { class: 'error', role: 'alert' }, problem);
  const box = h('main', { class: 'login' }, h('h1', {}, 'podgate'), h('p', {}, 'Log in to open shells in your pods.'));

  if (methods.oidc) {
    const returnTo = '/' + location.hash;
    box.appendChild(
      h('a', { class: 'button primary', id: 'login-oidc', href: `/auth/login?return_to=${encodeURIComponent(returnTo)}` },
        'Log in with OIDC'),
    );
  }
  if (methods.token) {
    box.appendChild(tokenForm({
      endpoint: '/auth/token', formClass: 'dev-login token-login', inputId: 'login-static-token', buttonId: 'login-token-submit',
      title: 'Log in with your token', note: 'Paste the podgate token your operator gave you. It is sent once and never stored in this browser.',
      placeholder: 'your podgate token', error, onLoggedIn, readable401: true,
    }));
  }
  if (methods.dev) {
    box.appendChild(tokenForm({
      endpoint: '/auth/dev-login', formClass: 'dev-login', inputId: 'login-token', buttonId: 'login-dev',
      title: 'Demo login', note: 'podgate demo: log in with a demo token (podgate-demo-admin, -alice or -bob).',
      placeholder: 'podgate-demo-admin', error, onLoggedIn, readable401: false,
    }));
  }
  if (!methods.oidc && !methods.dev && !methods.token && !problem) {
    error.textContent = 'This podgate offers no browser login: ask its operator to configure OIDC login or a tokens file.';
  }
  box.appendChild(error);
  return box;
}
