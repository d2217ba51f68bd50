// podgate's browser terminal: log in, pick a pod, get shells in tabs.

import './nonce';
import { ApiError, checkLogin, getJSON, type Whoami } from './api';
import { clear, h } from './dom';
import { LoginKeepalive } from './keepalive';
import { loginScreen } from './login';
import { kubeconfigMenu } from './kubeconfig';
import { Pages } from './pages';
import { Picker } from './pickers';
import * as route from './route';
import { TerminalTab } from './terminal';
import * as theme from './theme';
import * as views from './views';
import * as clusterinfo from './clusterinfo';
import { rememberCluster } from './searchlogic';
import { FONT_SIZES, isMac, loadFont, rememberRecent, saveFont, shortcuts, stepFont, type Store } from './where';

/// The browser's storage, or none where it is disabled.
function storage(): Store | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

class App {
  private readonly root: HTMLElement;
  private tabs: TerminalTab[] = [];
  private active: TerminalTab | null = null;
  private theme = theme.initial();
  private readonly store = storage();
  private fontSize = loadFont(this.store);
  private readonly fontLabel = h('span', { class: 'font-size', id: 'font-size', 'aria-live': 'polite' });
  private readonly tabBar = h('nav', { class: 'tabs', role: 'tablist', 'aria-label': 'Terminals' });
  private readonly panes = h('div', { class: 'panes' });
  private picker: Picker | null = null;
  private readonly pickerPane = h('div', { class: 'picker-pane' });
  private readonly who = h('span', { class: 'who' });
  /// The sessions, observe, recordings and replay pages (`#/sessions...`, `#/recordings...`).
  private readonly pages = new Pages(this.theme);
  /// Keeps the login (and so the shells opened from it) alive while a terminal is open.
  private readonly keepalive = new LoginKeepalive(checkLogin, () => this.loggedOut(), {
    setTimeout: (fn, ms) => window.setTimeout(fn, ms),
    clearTimeout: (handle) => window.clearTimeout(handle as number),
  });

  constructor(root: HTMLElement) {
    this.root = root;
    theme.apply(this.theme);
    window.addEventListener('hashchange', () => this.followHash());
  }

  async start(): Promise<void> {
    let me: Whoami;
    try {
      me = await getJSON<Whoami>('/podgate/whoami');
    } catch (e) {
      if (e instanceof ApiError && e.code === 401) {
        clear(this.root);
        this.root.appendChild(await loginScreen(() => void this.start()));
        return;
      }
      clear(this.root);
      this.root.appendChild(h('main', { class: 'login' }, h('h1', {}, 'podgate'),
        h('p', { class: 'error', role: 'alert' }, `podgate cannot be reached: ${e instanceof Error ? e.message : String(e)}`)));
      return;
    }
    this.render(me);
    this.picker = new Picker((t) => this.open(t), this.store);
    this.pickerPane.appendChild(this.picker.element);
    void this.picker.loadClusters();
    if (!this.followHash()) this.showPicker();
  }

  private render(me: Whoami): void {
    clear(this.root);
    const themeButton = h('button', { type: 'button', class: 'ghost', id: 'theme-toggle' });
    const label = () => {
      themeButton.textContent = this.theme === 'dark' ? '☀ Light' : '☾ Dark';
      themeButton.title = `Switch to the ${this.theme === 'dark' ? 'light' : 'dark'} theme`;
    };
    label();
    themeButton.addEventListener('click', () => {
      this.theme = this.theme === 'dark' ? 'light' : 'dark';
      theme.choose(this.theme);
      for (const t of this.tabs) t.setTheme(this.theme);
      this.pages.setTheme(this.theme);
      label();
    });
    const smaller = h('button', { type: 'button', class: 'ghost', id: 'font-smaller', title: 'Smaller terminal font', 'aria-label': 'Smaller terminal font' }, 'A−');
    const larger = h('button', { type: 'button', class: 'ghost', id: 'font-larger', title: 'Larger terminal font', 'aria-label': 'Larger terminal font' }, 'A+');
    const showFont = () => {
      this.fontLabel.textContent = `${this.fontSize}px`;
      smaller.disabled = this.fontSize <= FONT_SIZES[0];
      larger.disabled = this.fontSize >= FONT_SIZES[FONT_SIZES.length - 1];
    };
    const font = (dir: 1 | -1) => {
      this.fontSize = stepFont(this.fontSize, dir);
      saveFont(this.store, this.fontSize);
      for (const t of this.tabs) t.setFontSize(this.fontSize);
      showFont();
    };
    smaller.addEventListener('click', () => font(-1));
    larger.addEventListener('click', () => font(1));
    showFont();
    const keysHelp = h('div', { class: 'keys-help', id: 'keys-help', role: 'dialog', 'aria-label': 'Keyboard shortcuts', tabindex: '-1', hidden: true },
      h('h3', {}, 'Copy, paste and other keys'),
      h('dl', {}, ...shortcuts(isMac(navigator.platform)).flatMap(([k, what]) => [h('dt', {}, k), h('dd', {}, what)])));
    const keysButton = h('button', { type: 'button', class: 'ghost', id: 'keys-toggle', 'aria-expanded': 'false', 'aria-controls': 'keys-help', title: 'Copy, paste and other keys' }, '⌨ Keys');
    const showKeys = (on: boolean) => {
      keysHelp.hidden = !on;
      keysButton.setAttribute('aria-expanded', String(on));
      if (on) keysHelp.focus();
    };
    keysButton.addEventListener('click', () => showKeys(keysHelp.hidden));
    // Escape closes it (wherever the focus is), and so does a click elsewhere.
    document.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Escape' || keysHelp.hidden) return;
      showKeys(false);
      keysButton.focus();
    });
    document.addEventListener('pointerdown', (ev) => {
      const at = ev.target as Node | null;
      if (!keysHelp.hidden && at && !keysHelp.contains(at) && !keysButton.contains(at)) showKeys(false);
    });
    this.who.textContent = me.user;
    this.who.classList.remove('expired');
    this.who.title = me.groups.join(', ');
    const header = h('header', { class: 'top' },
      h('span', { class: 'brand' }, 'podgate'),
      this.who,
      h('nav', { class: 'page-links', 'aria-label': 'Pages' },
        h('a', { href: '#/sessions', id: 'nav-sessions' }, 'Sessions'),
        h('a', { href: '#/recordings', id: 'nav-recordings' }, 'Recordings')),
      h('span', { class: 'spacer' }),
      h('span', { class: 'font-control', role: 'group', 'aria-label': 'Terminal font size' }, smaller, this.fontLabel, larger),
      keysButton,
      kubeconfigMenu(),
      themeButton,
      h('form', { method: 'post', action: '/auth/logout', class: 'logout' },
        h('button', { type: 'submit', class: 'ghost' }, 'Log out')),
    );
    this.panes.appendChild(this.pickerPane);
    this.panes.appendChild(this.pages.element);
    this.root.append(header, keysHelp, this.tabBar, this.panes);
    this.renderTabs();
  }

  /// The login is gone (podgate answered 401). Open shells keep running until the gateway ends
  /// them; the header says so, and a reload logs in again.
  private loggedOut(): void {
    this.who.textContent = 'Not logged in';
    this.who.title = 'Your login has expired: reload the page to log in again.';
    this.who.classList.add('expired');
  }

  private renderTabs(): void {
    // Every change of a tab's state or of the set of tabs comes through here.
    this.keepalive.setOpenTerminals(this.tabs.filter((t) => t.state !== 'ended').length);
    clear(this.tabBar);
    for (const t of this.tabs) {
      const mark = t.mark;
      const select = h('button', {
        type: 'button', class: 'tab-select', role: 'tab', 'aria-selected': String(t === this.active),
        title: `${mark.text ? mark.text + ': ' : ''}${t.path()}`,
        onclick: () => this.activate(t),
      }, h('span', { class: `dot ${t.state}`, 'aria-label': t.state }),
      mark.short ? h('span', { class: `env-badge${mark.production ? ' prod' : ''}` }, mark.short) : null,
      t.title());
      const close = h('button', { type: 'button', class: 'tab-close', title: 'Close this terminal', 'aria-label': `Close ${t.title()}`,
        onclick: () => this.close(t) }, '×');
      this.tabBar.appendChild(h('div', { class: `tab${t === this.active ? ' active' : ''}${mark.production ? ' prod' : ''}` }, select, close));
    }
    this.tabBar.appendChild(h('button', {
      type: 'button', class: `tab-new${this.active ? '' : ' active'}`, id: 'tab-new', title: 'Open another terminal',
      onclick: () => this.showPicker(),
    }, '+ New terminal'));
  }

  private open(target: route.Target): void {
    const tab = new TerminalTab(target, this.theme, this.fontSize);
    tab.onStateChange = () => this.renderTabs();
    rememberRecent(this.store, target);
    rememberCluster(this.store, target.cluster);
    const known = clusterinfo.cached(target.cluster);
    if (known) tab.setCluster(known);
    else void clusterinfo.lookup(target.cluster).then((c) => { if (c) tab.setCluster(c); });
    tab.onUnauthorized = () => this.loggedOut();
    this.tabs.push(tab);
    this.hideAll();
    tab.mount(this.panes);
    this.activate(tab);
  }

  private activate(tab: TerminalTab): void {
    this.hideAll();
    this.active = tab;
    tab.show();
    history.replaceState(null, '', route.format(tab.target));
    this.renderTabs();
  }

  private hideAll(): void {
    this.pickerPane.hidden = true;
    this.pages.hide();
    for (const t of this.tabs) t.hide();
  }

  private showPicker(): void {
    this.hideAll();
    this.active = null;
    this.pickerPane.hidden = false;
    this.picker?.showRecent();
    this.picker?.search.input.focus();
    history.replaceState(null, '', '#/');
    this.renderTabs();
  }

  private close(tab: TerminalTab): void {
    const i = this.tabs.indexOf(tab);
    if (i < 0) return;
    tab.dispose();
    this.tabs.splice(i, 1);
    if (this.active === tab) {
      const next = this.tabs[Math.min(i, this.tabs.length - 1)];
      if (next) this.activate(next);
      else this.showPicker();
    } else {
      this.renderTabs();
    }
  }

  /// Opens (or switches to) the terminal the URL names; false when it names none.
  private followHash(): boolean {
    const page = views.parse(location.hash);
    if (page && this.picker) {
      const hash = location.hash;
      if (this.pages.element.hidden) this.hideAll();
      this.active = null;
      this.pages.show(page, hash);
      this.renderTabs();
      return true;
    }
    const target = route.parse(location.hash);
    if (!target || !this.picker) return false;
    const existing = this.tabs.find((t) => route.same(t.target, target));
    if (existing) {
      if (existing !== this.active) this.activate(existing);
    } else {
      this.open(target);
    }
    return true;
  }

  /// What the UI tests read (no secrets: the buffers are what the page shows anyway).
  testView(): unknown {
    return {
      active: this.active ? this.tabs.indexOf(this.active) : -1,
      page: this.pages.testView(),
      keepalive: { running: this.keepalive.running, requests: this.keepalive.requests, intervalMs: this.keepalive.intervalMs },
      fontSize: this.fontSize,
      search: this.picker?.search.stats,
      tabs: this.tabs.map((t) => ({
        title: t.title(),
        path: t.path(),
        environment: t.mark.text,
        production: t.mark.production,
        fontSize: t.term.options.fontSize,
        target: t.target,
        state: t.state,
        text: t.text(),
        cols: t.term.cols,
        rows: t.term.rows,
        stats: t.stats,
      })),
    };
  }
}

const root = document.getElementById('app');
if (root) {
  const app = new App(root);
  (window as unknown as { podgate: { view: () => unknown } }).podgate = { view: () => app.testView() };
  void app.start();
}
