// The "new terminal" form: cluster (with health), namespace, pod, container (with init and
// ephemeral containers and their state), and the command. Lists come from the gateway's
// proxied Kubernetes API as the person, so each shows what their RBAC allows.

import { ApiError, clusterLabel, clusterPath, clustersPath, getJSON, type ClusterPage, type ContainerStatus, type Pod } from './api';
import { h, setOptions } from './dom';
import type { Target } from './route';
import { splitCommand } from './command';
import { preflight } from './preflight';

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

  constructor(private readonly open: (t: Target) => void) {
    this.cluster = new Choice('Cluster', 'pick-cluster', () => void this.loadNamespaces());
    this.cluster.element.insertBefore(this.clusterSearch, this.cluster.select);
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
    this.element = h('form', { class: 'picker', onsubmit: submit, 'aria-label': 'Open a terminal' },
      h('h2', {}, 'Open a terminal'),
      h('div', { class: 'fields' },
        this.cluster.element, this.namespace.element, this.pod.element, this.container.element,
        h('div', { class: 'field' }, h('label', { for: 'pick-shell' }, 'Shell'), this.shell, this.command),
      ),
      this.error,
      h('button', { type: 'submit', class: 'primary', id: 'pick-open' }, 'Open terminal'),
    );
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
      const options: [string, string][] = clusters.map((c) => [c.id, clusterLabel(c)]);
      const keep = clusters.find((c) => c.id === before);
      const first = keep ?? clusters.find((c) => c.up) ?? clusters[0];
      this.cluster.fill(options, first.id);
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
    this.pod.loading();
    try {
      const list = await getJSON<List<Pod>>(clusterPath(this.cluster.value(), `/api/v1/namespaces/${encodeURIComponent(ns)}/pods`));
      if (gen !== this.generation) return;
      this.pods = (list.items ?? []).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
      this.pod.fill(this.pods.map((p) => [p.metadata.name, `${p.metadata.name}${p.status?.phase ? ' (' + p.status.phase + ')' : ''}`]));
    } catch (e) {
      if (gen !== this.generation) return;
      this.pod.freeText(`Pods could not be listed (${describe(e)}); type a name.`);
    }
    this.showContainers();
  }

  private showContainers(): void {
    const pod = this.pods.find((p) => p.metadata.name === this.pod.value());
    if (!pod) {
      this.container.freeText('Leave empty for the pod\'s default container.');
      this.container.input.value = '';
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
