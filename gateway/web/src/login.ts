// The login screen: the methods the gateway offers (GET /auth/methods): OIDC (a redirect to
// the provider and back) and, in `podgate demo` on loopback, the demo token.

import { getJSON, type Methods } from './api';
import { h } from './dom';
import { parseStatus } from './protocol';

export async function loginScreen(onLoggedIn: () => void): Promise<HTMLElement> {
  let methods: Methods = { dev: false, oidc: false };
  let problem = '';
  try {
    methods = await getJSON<Methods>('/auth/methods');
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
  if (methods.dev) {
    const token = h('input', {
      type: 'password', id: 'login-token', name: 'token', autocomplete: 'off', required: true,
      placeholder: 'podgate-demo-admin',
    });
    const submit = async (ev: Event) => {
      ev.preventDefault();
      error.textContent = '';
      try {
        const resp = await fetch('/auth/dev-login', {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify({ token: token.value }),
        });
        if (resp.ok) {
          onLoggedIn();
          return;
        }
        const st = parseStatus(await resp.text());
        error.textContent = resp.status === 401 ? 'That token is not valid.' : (st?.message ?? `Login failed (HTTP ${resp.status}).`);
      } catch (e) {
        error.textContent = `podgate cannot be reached: ${String(e)}`;
      }
    };
    box.appendChild(
      h('form', { class: 'dev-login', onsubmit: (ev: Event) => void submit(ev) },
        h('h2', {}, 'Demo login'),
        h('p', { class: 'note' }, 'podgate demo: log in with a demo token (podgate-demo-admin, -alice or -bob).'),
        h('label', { for: 'login-token' }, 'Token'),
        token,
        h('button', { type: 'submit', class: 'primary', id: 'login-dev' }, 'Log in'),
      ),
    );
  }
  if (!methods.oidc && !methods.dev && !problem) {
    error.textContent = 'This podgate offers no browser login: ask its operator to configure OIDC login.';
  }
  box.appendChild(error);
  return box;
}
