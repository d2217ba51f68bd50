// The header's "kubeconfig" menu: download a kubeconfig for kubectl with a context per cluster
// you may use (GET /podgate/kubeconfig: no secret in it; with OIDC it logs kubectl in through
// kubelogin). A token login may ask for its token to be embedded by typing it again: the form
// POSTs it (never in the URL), and the page never learns a token it was not given, since the
// session cookie holds only the token's digest.

import { getJSON } from './api';
import { h } from './dom';
import type { LoginMethods } from './login';

export function kubeconfigMenu(): HTMLElement {
  const panel = h('div', { class: 'kubeconfig-panel', id: 'kubeconfig-panel', hidden: true, role: 'dialog', 'aria-label': 'kubeconfig for kubectl' },
    h('p', {}, 'A kubeconfig with a context per cluster you may use (named by cluster id).'),
    h('a', { class: 'button primary', id: 'kubeconfig-download', href: '/podgate/kubeconfig', download: '' }, 'Download kubeconfig'),
  );
  const embed = h('form', {
    class: 'kubeconfig-embed', id: 'kubeconfig-embed', method: 'post', action: '/podgate/kubeconfig', hidden: true,
  },
  h('p', { class: 'note' }, 'Logged in with a token? Type it again to have it put into the file (keep that file private).'),
  h('label', { for: 'kubeconfig-token' }, 'Your token'),
  h('input', { type: 'password', id: 'kubeconfig-token', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false' }),
  h('button', { type: 'submit', id: 'kubeconfig-embed-submit' }, 'Download with my token'));
  // Clear the field once the form went off (the answer is a download: the page stays).
  embed.addEventListener('submit', () => window.setTimeout(() => {
    (embed.querySelector('#kubeconfig-token') as HTMLInputElement | null)?.form?.reset();
  }, 0));
  panel.appendChild(embed);
  void getJSON<LoginMethods>('/auth/methods').then((m) => {
    embed.hidden = !(m.token || m.dev);
    embed.style.display = embed.hidden ? 'none' : 'flex';
  }, () => undefined);
  const button = h('button', {
    type: 'button', class: 'ghost', id: 'kubeconfig-menu', 'aria-expanded': 'false', 'aria-controls': 'kubeconfig-panel',
    title: 'A kubeconfig for kubectl through podgate',
  }, 'kubeconfig');
  button.addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    panel.style.display = panel.hidden ? 'none' : 'flex';
    button.setAttribute('aria-expanded', String(!panel.hidden));
  });
  // Placed by script (CSSOM, which the page's CSP allows), so style.css needs nothing.
  Object.assign(panel.style, {
    position: 'absolute', right: '0', top: '100%', zIndex: '10', width: '22em', padding: '0.75em',
    background: 'var(--panel)', border: '1px solid var(--border, #888)', borderRadius: '6px',
    flexDirection: 'column', gap: '0.5em',
  });
  Object.assign(embed.style, { flexDirection: 'column', gap: '0.4em', marginTop: '0.75em' });
  const wrap = h('span', { class: 'kubeconfig-menu' }, button, panel);
  wrap.style.position = 'relative';
  return wrap;
}
