// The "new terminal" form: cluster (with health), namespace, pod, container (with init and
// ephemeral containers and their state), and the command. Lists come from the gateway's
// proxied Kubernetes API as the person, so each shows what their RBAC allows.

import { ApiError, clusterLabel, clusterPath, clustersPath, getJSON, type ClusterInfo, type ClusterPage, type ContainerStatus, type Pod } from './api';
import * as clusterinfo from './clusterinfo';
import { clear, h, setOptions } from './dom';
import { environmentMark, loadRecent, recentFirst, tabTitle, type Recent, type Store } from './where';
import type { Target } from './route';
import { splitCommand } from './command';
import { preflight } from './preflight';
import { PodSearch } from './search';
import { loadRecentClusters, searchClusters } from './searchlogic';

interface List<T> {
  items?: T[];
}

/// A <select> filled from an API list, or a text field when the list is refused (a person
/// may be allowed to exec into a namespace they may not list).
class Choice {
  readonly select = h('select');
  readonly input = h('input', { type: 'text', hidden: true, spellcheck: 'false', autocomplete: 'off' });
  readonly note = h('p', { class: 'note', 'aria-live': 'polite' });
  readonly element: HTMLElement;

  constructor(label: string, id: string, onChange: () => void) {
    this.select.id = id;
    this.input.setAttribute('aria-label', label);
    this.select.addEventListener('change', onChange);
    this.input.addEventListener('change', onChange);
    this.element = h('div', { class: 'field' }, h('label', { for: id }, label), this.select, this.input, this.note);
  }

  value(): string {
    return this.input.hidden ? this.select.value : this.input.value.trim();
  }

  fill(options: [string, string][], selected?: string): void {
    this.select.hidden = false;
    this.input.hidden = true;
    this.select.disabled = options.length === 0;
    setOptions(this.select, options.length ? options : [['', '(none)']], selected);
    this.note.textContent = '';
  }

  freeText(note: string): void {
    this.select.hidden = true;
    this.input.hidden = false;
    this.note.textContent = note;
  }

  loading(): void {
    this.fill([['', 'loading…']]);
    this.select.disabled = true;
  }
}

function describe(e: unknown): string {
  if (e instanceof ApiError) return e.code ? `${e.message} (HTTP ${e.code})` : e.message;
  return String(e);
}

function stateOf(s: ContainerStatus | undefined): string {
  const st = s?.state;
  if (!st) return 'unknown';
  if (st.running) return s?.ready === false ? 'running, not ready' : 'running';
  if (st.waiting) return `waiting${st.waiting.reason ? ': ' + st.waiting.reason : ''}`;
  if (st.terminated) {
    const t = st.terminated;
    return `terminated${t.reason ? ': ' + t.reason : ''}${t.exitCode !== undefined ? ` (exit ${t.exitCode})` : ''}`;
  }
  return 'unknown';
}

/// Clusters shown at once: a fleet has thousands, and the picker searches instead of listing.
const CLUSTER_PAGE = 50;
/// Typing pauses this long before the gateway is asked.
const SEARCH_DELAY_MS = 200;

export class Picker {
  readonly element: HTMLElement;
  private readonly cluster: Choice;
  private readonly namespace: Choice;
  private readonly pod: Choice;
  private readonly container: Choice;
  private readonly shell = h('select', { id: 'pick-shell' });
  private readonly command = h('input', {
    type: 'text', id: 'pick-command', placeholder: 'e.g. top', hidden: true, spellcheck: 'false', autocomplete: 'off',
    'aria-label': 'Command',
  });
  private readonly error = h('p', { class: 'error', role: 'alert' });
  /// Searches the clusters (the gateway filters and pages; the list shows one page).
  private readonly clusterSearch = h('input', {
    type: 'search', id: 'pick-cluster-search', placeholder: 'Search clusters: name, environment, label',
    spellcheck: 'false', autocomplete: 'off', 'aria-label': 'Search clusters', 'aria-controls': 'pick-cluster',
  });
  private searchTimer: ReturnType<typeof setTimeout> | undefined;
  /// Ignores answers to superseded searches.
  private searchGeneration = 0;
  private pods: Pod[] = [];
  /// Ignores answers to superseded requests (a person changing the cluster quickly).
  private generation = 0;
  /// Ignores pre-flight answers for a click that another one superseded.
  private submits = 0;
  /// The clusters of the page shown, by id (for their environment).
  private clusters = new Map<string, ClusterInfo>();
  /// The chosen cluster's environment, in words and colour, beside the cluster list.
  private readonly clusterEnv = h('p', { class: 'env-badge', id: 'pick-cluster-env', hidden: true });
  private readonly openButton = h('button', { type: 'submit', class: 'primary', id: 'pick-open', disabled: true }, 'Open terminal');
  /// The pods used recently, newest first: one click opens one.
  private readonly recentList = h('ul', { class: 'recent-list', id: 'pick-recent' });
  private readonly recentBox = h('section', { class: 'recent', 'aria-label': 'Recently used pods', hidden: true },
    h('h3', {}, 'Recently used'), this.recentList);
  private recent: Recent[] = [];
  /// The pod search across namespaces and clusters (the chosen one and recent ones).
  readonly search: PodSearch;

  constructor(private readonly open: (t: Target) => void, private readonly store: Store | null = null) {
    this.cluster = new Choice('Cluster', 'pick-cluster', () => {
      this.showEnvironment();
      void this.loadNamespaces();
    });
    this.cluster.element.insertBefore(this.clusterSearch, this.cluster.select);
    this.cluster.element.appendChild(this.clusterEnv);
    this.clusterSearch.addEventListener('input', () => {
      clearTimeout(this.searchTimer);
      this.searchTimer = setTimeout(() => void this.loadClusters(), SEARCH_DELAY_MS);
    });
    this.clusterSearch.addEventListener('keydown', (ev) => {
      // Enter searches at once (and does not submit the form); ArrowDown goes to the results.
      if (ev.key === 'Enter') {
        ev.preventDefault();
        clearTimeout(this.searchTimer);
        void this.loadClusters();
      } else if (ev.key === 'ArrowDown') {
        ev.preventDefault();
        this.cluster.select.focus();
      }
    });
    this.namespace = new Choice('Namespace', 'pick-namespace', () => void this.loadPods());
    this.pod = new Choice('Pod', 'pick-pod', () => {
      this.error.textContent = '';
      this.showContainers();
    });
    this.pod.input.addEventListener('input', () => this.updateOpen());
    this.container = new Choice('Container', 'pick-container', () => {});
    setOptions(this.shell, [
      ['auto', 'Automatic shell (bash, else sh)'],
      ['command', 'Command…'],
    ]);
    this.shell.addEventListener('change', () => {
      this.command.hidden = this.shell.value !== 'command';
      if (!this.command.hidden) this.command.focus();
    });
    const submit = (ev: Event) => {
      ev.preventDefault();
      void this.submit();
    };
    this.search = new PodSearch(
      () => searchClusters(this.cluster.value(), loadRecentClusters(this.store)),
      (t) => void this.submitTarget(t),
    );
    this.element = h('form', { class: 'picker', onsubmit: submit, 'aria-label': 'Open a terminal' },
      h('h2', {}, 'Open a terminal'),
      this.search.element,
      this.recentBox,
      h('div', { class: 'fields' },
        this.cluster.element, this.namespace.element, this.pod.element, this.container.element,
        h('div', { class: 'field' }, h('label', { for: 'pick-shell' }, 'Shell'), this.shell, this.command),
      ),
      this.error,
      this.openButton,
    );
    this.showRecent();
  }

  /// Lists the pods used recently (newest first), each a button that opens it.
  showRecent(): void {
    this.recent = loadRecent(this.store);
    clear(this.recentList);
    for (const r of this.recent) {
      const mark = environmentMark(clusterinfo.cached(r.cluster)?.environment);
      const t: Target = { ...r };
      this.recentList.appendChild(h('li', {},
        h('button', {
          type: 'button', class: `recent-open${mark.production ? ' prod' : ''}`, title: `Open ${r.cluster} / ${r.namespace} / ${r.pod}`,
          onclick: () => void this.submitTarget(t),
        },
        mark.short ? h('span', { class: `env-badge${mark.production ? ' prod' : ''}` }, mark.short) : null,
        tabTitle(t), h('span', { class: 'recent-ns' }, ` · ${r.namespace}`))));
    }
    this.recentBox.hidden = this.recent.length === 0;
  }

  /// Open is offered only once a pod is chosen (nothing is preselected).
  private updateOpen(): void {
    this.openButton.disabled = !this.cluster.value() || !this.namespace.value() || !this.pod.value();
  }

  private showEnvironment(): void {
    const mark = environmentMark(this.clusters.get(this.cluster.value())?.environment);
    this.clusterEnv.hidden = !mark.text;
    this.clusterEnv.textContent = mark.production ? `⚠ ${mark.text}: a production cluster` : mark.text;
    this.clusterEnv.classList.toggle('prod', mark.production);
    this.cluster.select.classList.toggle('prod', mark.production);
  }

  /// One page of the clusters matching the search box (the first page when it is empty);
  /// keeps the chosen cluster when it is still among them.
  async loadClusters(): Promise<void> {
    const gen = ++this.searchGeneration;
    const search = this.clusterSearch.value;
    const before = this.cluster.select.value;
    this.cluster.loading();
    try {
      const page = await getJSON<ClusterPage>(clustersPath(search, CLUSTER_PAGE));
      if (gen !== this.searchGeneration) return;
      const clusters = page.clusters;
      if (clusters.length === 0) {
        this.cluster.fill([]);
        if (search.trim()) {
          this.cluster.note.textContent = `No cluster matches “${search.trim()}”.`;
        } else {
          this.error.textContent = 'You may not use any cluster through this podgate.';
        }
        return;
      }
      clusterinfo.remember(clusters);
      this.clusters = new Map(clusters.map((c) => [c.id, c]));
      const options: [string, string][] = clusters.map((c) => [c.id, clusterLabel(c)]);
      const keep = clusters.find((c) => c.id === before);
      const used = this.recent.map((r) => clusters.find((c) => c.id === r.cluster)).find((c) => c);
      const first = keep ?? used ?? clusters.find((c) => c.up) ?? clusters[0];
      this.cluster.fill(options, first.id);
      this.showEnvironment();
      this.showRecent();
      if (page.continue) {
        const more = page.remaining ?? 0;
        this.cluster.note.textContent = `Showing ${clusters.length} of ${clusters.length + more}; type to narrow the search.`;
      }
      if (first.id !== before || this.namespace.value() === '') await this.loadNamespaces();
    } catch (e) {
      if (gen !== this.searchGeneration) return;
      this.cluster.fill([]);
      this.error.textContent = `Could not list clusters: ${describe(e)}`;
    }
  }

  private async loadNamespaces(): Promise<void> {
    const gen = ++this.generation;
    const cluster = this.cluster.value();
    this.error.textContent = '';
    this.namespace.loading();
    try {
      const list = await getJSON<List<{ metadata: { name: string } }>>(clusterPath(cluster, '/api/v1/namespaces'));
      if (gen !== this.generation) return;
      const names = (list.items ?? []).map((n) => n.metadata.name).sort();
      this.namespace.fill(names.map((n) => [n, n]), names.includes('default') ? 'default' : names[0]);
    } catch (e) {
      if (gen !== this.generation) return;
      this.namespace.freeText(`Namespaces could not be listed (${describe(e)}); type one.`);
    }
    await this.loadPods();
  }

  private async loadPods(): Promise<void> {
    const gen = ++this.generation;
    const ns = this.namespace.value();
    this.pods = [];
    if (!ns) {
      this.pod.fill([]);
      this.showContainers();
      return;
    }
    this.openButton.disabled = true;
    this.pod.loading();
    try {
      const list = await getJSON<List<Pod>>(clusterPath(this.cluster.value(), `/api/v1/namespaces/${encodeURIComponent(ns)}/pods`));
      if (gen !== this.generation) return;
      this.pods = (list.items ?? []).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
      this.fillPods(ns);
    } catch (e) {
      if (gen !== this.generation) return;
      this.pod.freeText(`Pods could not be listed (${describe(e)}); type a name.`);
    }
    this.showContainers();
  }

  /// The pods, the recently used ones first; none chosen: a shell opens only on a pod the
  /// person picks.
  private fillPods(ns: string): void {
    const label = (name: string) => {
      const p = this.pods.find((x) => x.metadata.name === name);
      return `${name}${p?.status?.phase ? ' (' + p.status.phase + ')' : ''}`;
    };
    const { recent, rest } = recentFirst(this.pods.map((p) => p.metadata.name), this.recent, this.cluster.value(), ns);
    const sel = this.pod.select;
    this.pod.fill([]);
    clear(sel);
    sel.disabled = this.pods.length === 0;
    sel.appendChild(h('option', { value: '', selected: true }, this.pods.length ? 'Choose a pod…' : '(no pods)'));
    const group = (name: string, names: string[]) => {
      if (!names.length) return;
      const g = h('optgroup', { label: name });
      for (const n of names) g.appendChild(h('option', { value: n }, label(n)));
      sel.appendChild(g);
    };
    if (recent.length) {
      group('Recently used', recent);
      group('All pods', rest);
    } else {
      for (const n of rest) sel.appendChild(h('option', { value: n }, label(n)));
    }
  }

  private showContainers(): void {
    this.updateOpen();
    const pod = this.pods.find((p) => p.metadata.name === this.pod.value());
    if (!pod && !this.pod.input.hidden) {
      this.container.freeText('Leave empty for the pod\'s default container.');
      this.container.input.value = '';
      return;
    }
    if (!pod) {
      this.container.fill([['', 'choose a pod first']]);
      this.container.select.disabled = true;
      return;
    }
    const options: [string, string][] = [];
    const add = (kind: string, specs: { name: string }[] | undefined, statuses: ContainerStatus[] | undefined) => {
      for (const c of specs ?? []) {
        const label = `${c.name}${kind ? ' [' + kind + ']' : ''} — ${stateOf(statuses?.find((s) => s.name === c.name))}`;
        options.push([c.name, label]);
      }
    };
    add('', pod.spec?.containers, pod.status?.containerStatuses);
    add('init', pod.spec?.initContainers, pod.status?.initContainerStatuses);
    add('ephemeral', pod.spec?.ephemeralContainers, pod.status?.ephemeralContainerStatuses);
    const preferred = pod.metadata.annotations?.['kubectl.kubernetes.io/default-container'];
    this.container.fill(options, preferred ?? pod.spec?.containers?.[0]?.name);
  }

  private async submit(): Promise<void> {
    const t: Target = {
      cluster: this.cluster.value(),
      namespace: this.namespace.value(),
      pod: this.pod.value(),
      container: this.container.value() || undefined,
    };
    if (this.shell.value === 'command') {
      const argv = splitCommand(this.command.value);
      if (argv.length === 0) {
        this.error.textContent = 'Type a command, or choose the automatic shell.';
        return;
      }
      t.command = argv;
    }
    await this.submitTarget(t);
  }

  private async submitTarget(t: Target): Promise<void> {
    if (!t.cluster || !t.namespace || !t.pod) {
      this.error.textContent = 'Choose a cluster, a namespace and a pod.';
      return;
    }
    this.error.textContent = '';
    // Ask the cluster first: a refusal reads here, in the picker, and opens no terminal.
    const gen = ++this.submits;
    const verdict = await preflight(t);
    if (gen !== this.submits) return;
    if (verdict.kind === 'denied') {
      this.error.textContent = verdict.message;
      return;
    }
    this.open(t);
  }
}
