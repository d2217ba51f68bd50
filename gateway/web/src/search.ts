// The pod search box: pods across the namespaces the person may list, in the chosen cluster
// and the ones used recently (`/podgate/pods/search`). Keyboard only works throughout: type,
// ↑/↓ to move through the results (none is chosen until then), Enter opens a shell on the
// chosen one, Escape clears. Nothing opens unless the person picks it.

import { h, clear } from './dom';
import type { Target } from './route';
import { age, move, notes, parseAnswer, searchPath, syncing, type PodHit } from './searchlogic';
import { parseStatus } from './protocol';

/// While a cluster is still listing its pods, the search is asked again after this long.
const POLL_MS = 400;
const LIMIT = 50;

export class PodSearch {
  readonly element: HTMLElement;
  readonly input = h('input', {
    type: 'search', id: 'pod-search', placeholder: 'Find a pod: name, namespace, app=web, node, owner',
    spellcheck: 'false', autocomplete: 'off', role: 'combobox', 'aria-expanded': 'false',
    'aria-controls': 'pod-search-results', 'aria-autocomplete': 'list', 'aria-label': 'Find a pod',
  });
  private readonly list = h('ul', { id: 'pod-search-results', class: 'pod-results', role: 'listbox', 'aria-label': 'Pods found' });
  private readonly status = h('p', { class: 'note pod-search-status', id: 'pod-search-status', 'aria-live': 'polite' });
  private hits: PodHit[] = [];
  private active = -1;
  private gen = 0;
  private inflight: AbortController | null = null;
  private poll: ReturnType<typeof setTimeout> | undefined;
  /// When the person last typed (for the keystroke latency the bench reads).
  private typedAt = 0;
  /// What the benchmark and tests read: the query the shown results are for, and how long
  /// the last keystroke took to show its results.
  readonly stats = { renderedFor: '', lastLatencyMs: -1, searches: 0 };

  constructor(private readonly clusters: () => string[], private readonly choose: (t: Target) => void) {
    this.element = h('section', { class: 'pod-search', 'aria-label': 'Find a pod' },
      h('label', { for: 'pod-search' }, 'Find a pod'), this.input, this.status, this.list);
    this.input.addEventListener('input', () => {
      this.typedAt = performance.now();
      void this.run();
    });
    this.input.addEventListener('keydown', (ev) => this.key(ev));
  }

  private key(ev: KeyboardEvent): void {
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      this.setActive(move(this.active, ev.key, this.hits.length));
    } else if (ev.key === 'Enter') {
      // Never submits the picker's form: Enter opens only a result the person moved to.
      ev.preventDefault();
      const hit = this.hits[this.active];
      if (hit) this.choose({ cluster: hit.cluster, namespace: hit.namespace, pod: hit.pod });
    } else if (ev.key === 'Escape') {
      if (this.input.value || this.hits.length) {
        ev.preventDefault();
        ev.stopPropagation();
        this.input.value = '';
        void this.run();
      }
    }
  }

  private setActive(i: number): void {
    this.active = i;
    const rows = Array.from(this.list.children) as HTMLElement[];
    rows.forEach((r, j) => r.setAttribute('aria-selected', String(j === i)));
    if (i >= 0 && rows[i]) {
      this.input.setAttribute('aria-activedescendant', rows[i].id);
      rows[i].scrollIntoView({ block: 'nearest' });
    } else {
      this.input.removeAttribute('aria-activedescendant');
    }
  }

  /// Asks the gateway for the current text (a newer keystroke supersedes an older answer).
  async run(): Promise<void> {
    clearTimeout(this.poll);
    const q = this.input.value.trim();
    const gen = ++this.gen;
    this.inflight?.abort();
    if (!q) {
      this.render([], q);
      this.status.textContent = '';
      return;
    }
    const clusters = this.clusters();
    if (!clusters.length) {
      this.render([], q);
      this.status.textContent = 'Choose a cluster to search.';
      return;
    }
    const ctl = new AbortController();
    this.inflight = ctl;
    let body: unknown;
    try {
      const resp = await fetch(searchPath(q, clusters, LIMIT), {
        credentials: 'same-origin', headers: { Accept: 'application/json' }, signal: ctl.signal,
      });
      const text = await resp.text();
      if (gen !== this.gen) return;
      if (!resp.ok) {
        this.render([], q);
        this.status.textContent = `Search failed: ${parseStatus(text)?.message ?? `HTTP ${resp.status}`}`;
        return;
      }
      body = JSON.parse(text);
    } catch (e) {
      if (gen !== this.gen) return;
      this.render([], q);
      this.status.textContent = `Search failed: ${String(e)}`;
      return;
    }
    const answer = parseAnswer(body);
    this.stats.searches++;
    this.render(answer.hits, q);
    const said = notes(answer);
    this.status.textContent = answer.hits.length
      ? said.join(' ')
      : [`No pod matches “${q}” in ${clusters.join(', ')}.`, ...said].join(' ');
    if (syncing(answer)) this.poll = setTimeout(() => void this.run(), POLL_MS);
  }

  private render(hits: PodHit[], q: string): void {
    this.hits = hits;
    this.active = -1;
    clear(this.list);
    this.input.removeAttribute('aria-activedescendant');
    hits.forEach((p, i) => {
      const row = h('li', {
        id: `pod-hit-${i}`, role: 'option', class: 'pod-hit', 'aria-selected': 'false',
        title: `${p.cluster} / ${p.namespace} / ${p.pod}`,
        onclick: () => this.choose({ cluster: p.cluster, namespace: p.namespace, pod: p.pod }),
      },
      h('span', { class: 'hit-cluster' }, p.cluster),
      h('span', { class: 'hit-ns' }, p.namespace),
      h('span', { class: 'hit-pod' }, p.pod),
      h('span', { class: `hit-phase phase-${p.phase.toLowerCase()}` }, p.phase),
      h('span', { class: 'hit-ready', title: 'ready containers' }, p.ready),
      h('span', { class: 'hit-restarts', title: 'restarts' }, `↻${p.restarts}`),
      h('span', { class: 'hit-age', title: 'age' }, age(p.ageSeconds)),
      h('span', { class: 'hit-node', title: 'node' }, p.node),
      p.owner ? h('span', { class: 'hit-owner', title: 'owner' }, p.owner) : null);
      this.list.appendChild(row);
    });
    this.input.setAttribute('aria-expanded', String(hits.length > 0));
    this.stats.renderedFor = q;
    if (this.typedAt) this.stats.lastLatencyMs = performance.now() - this.typedAt;
    this.list.dataset.renderedFor = q;
  }
}
