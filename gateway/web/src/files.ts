// File upload and download for a terminal's container (the "Files" button in its header):
// through the gateway's `/podgate/clusters/{id}/namespaces/{ns}/pods/{pod}/file`, tar over
// exec as `kubectl cp` does. Uploads go with XMLHttpRequest (its upload progress events),
// downloads with fetch() reading the stream against Content-Length; both show a progress bar
// and say plainly what went wrong (no tar in the image, permission, read-only, disk full, too
// large). The limits are podgate's and it enforces them; the page checks them first only so a
// file that would be refused is not sent.

import { h } from './dom';
import {
  type Limits, baseName, fileErrorCause, fileErrorText, fileUrl, joinPath, parseLimits, pathProblem, progressText, sizeText,
  tooLarge,
} from './filetext';
import type { Target } from './route';

/// What the UI tests read (`data-state` on the panel).
export type FilesState = 'idle' | 'uploading' | 'downloading' | 'done' | 'error';

export class FilesPanel {
  readonly element: HTMLElement;
  state: FilesState = 'idle';
  /// Progress updates of the current or last transfer (`data-progress-events`).
  progressEvents = 0;
  private readonly fileInput: HTMLInputElement;
  private readonly dirInput: HTMLInputElement;
  private readonly pathInput: HTMLInputElement;
  private readonly bar: HTMLProgressElement;
  private readonly barText: HTMLElement;
  private readonly status: HTMLElement;
  private readonly cancelButton: HTMLButtonElement;
  private limits: Limits | null = null;
  private xhr: XMLHttpRequest | null = null;
  private abort: AbortController | null = null;
  private closed = false;

  constructor(readonly target: Target, readonly onClose: () => void = () => {}) {
    this.fileInput = h('input', { type: 'file', class: 'files-file', 'aria-label': 'File to upload' });
    this.dirInput = h('input', { type: 'text', class: 'files-dir', value: '/tmp', spellcheck: 'false', 'aria-label': 'Directory to upload into' });
    this.pathInput = h('input', {
      type: 'text', class: 'files-path', placeholder: '/path/to/file', spellcheck: 'false', 'aria-label': 'File to download',
      onkeydown: (ev: Event) => { if ((ev as KeyboardEvent).key === 'Enter') void this.download(); },
    });
    this.bar = h('progress', { class: 'files-progress', max: 1, value: 0, hidden: true });
    this.barText = h('span', { class: 'files-progress-text', 'aria-live': 'polite' });
    this.status = h('div', { class: 'files-status', role: 'status' });
    this.cancelButton = h('button', { type: 'button', class: 'files-cancel', hidden: true, onclick: () => this.cancel() }, 'Cancel');
    const where = `${target.pod}${target.container ? '/' + target.container : ''}`;
    this.element = h('section', { class: 'files-panel', role: 'dialog', 'aria-label': `files of ${where}` },
      h('div', { class: 'files-head' },
        h('strong', {}, 'Files'), h('span', { class: 'files-where' }, where),
        h('button', { type: 'button', class: 'files-close', title: 'Close (Escape)', onclick: () => this.close() }, '×')),
      h('div', { class: 'files-row' },
        h('label', { class: 'files-label' }, 'Upload'), this.fileInput,
        h('span', { class: 'files-into' }, 'into'), this.dirInput,
        h('button', { type: 'button', class: 'files-upload', onclick: () => this.upload() }, 'Upload')),
      h('div', { class: 'files-row' },
        h('label', { class: 'files-label' }, 'Download'), this.pathInput,
        h('button', { type: 'button', class: 'files-download', onclick: () => void this.download() }, 'Download')),
      h('div', { class: 'files-row files-progress-row' }, this.bar, this.barText, this.cancelButton),
      this.status,
      h('div', { class: 'files-note' }, 'Copied with tar in the container, as kubectl cp does.'));
    this.element.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') this.close(); });
    this.setState('idle');
  }

  /// Asks podgate for its limits (call once the panel is on the page).
  open(): void {
    fetch('/podgate/files', { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(async (r) => { if (r.ok) this.limits = parseLimits(await r.text()); })
      .catch(() => {});
    this.fileInput.focus();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cancel();
    this.element.remove();
    this.onClose();
  }

  private setState(s: FilesState, message = ''): void {
    this.state = s;
    this.element.dataset.state = s;
    this.element.dataset.progressEvents = String(this.progressEvents);
    this.status.textContent = message;
    this.status.classList.toggle('error', s === 'error');
    // A failed transfer's bar would read as done: the message says how it ended instead.
    if (s === 'error') {
      this.bar.hidden = true;
      this.barText.textContent = '';
    }
    const busy = s === 'uploading' || s === 'downloading';
    this.cancelButton.hidden = !busy;
    for (const b of this.element.querySelectorAll<HTMLButtonElement>('.files-upload, .files-download')) b.disabled = busy;
  }

  private progress(done: number, total: number | null): void {
    this.progressEvents++;
    this.element.dataset.progressEvents = String(this.progressEvents);
    this.bar.hidden = false;
    if (total && total > 0) {
      this.bar.max = total;
      this.bar.value = Math.min(done, total);
    } else {
      this.bar.removeAttribute('value'); // indeterminate
    }
    this.barText.textContent = progressText(done, total);
  }

  private fail(code: number, body: string): void {
    const cause = fileErrorCause(body);
    this.element.dataset.cause = cause;
    this.setState('error', fileErrorText(code, body));
  }

  private begin(s: FilesState): void {
    this.progressEvents = 0;
    this.element.dataset.cause = '';
    this.bar.hidden = false;
    this.bar.max = 1;
    this.bar.value = 0;
    this.barText.textContent = '';
    this.setState(s);
  }

  upload(): void {
    const file = this.fileInput.files?.[0];
    if (!file) { this.setState('error', 'Choose a file to upload first'); return; }
    const path = joinPath(this.dirInput.value, file.name);
    const problem = pathProblem(path) || tooLarge(file.size, this.limits?.max_upload, 'upload');
    if (problem) { this.setState('error', problem); return; }
    const t = this.target;
    const xhr = new XMLHttpRequest();
    this.xhr = xhr;
    this.begin('uploading');
    this.progress(0, file.size);
    xhr.open('PUT', fileUrl(t.cluster, t.namespace, t.pod, t.container, path));
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.upload.onprogress = (e) => this.progress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      this.xhr = null;
      if (xhr.status === 200) {
        this.progress(file.size, file.size);
        this.pathInput.value = path;
        this.setState('done', `Uploaded ${file.name} (${sizeText(file.size)}) to ${path}`);
      } else {
        this.fail(xhr.status, xhr.responseText);
      }
    };
    xhr.onerror = () => {
      this.xhr = null;
      this.fail(0, '');
    };
    xhr.onabort = () => {
      this.xhr = null;
      this.setState('error', 'Upload cancelled; a partial file may remain in the container');
    };
    xhr.send(file);
  }

  async download(): Promise<void> {
    const path = this.pathInput.value.trim();
    const problem = pathProblem(path);
    if (problem) { this.setState('error', problem); return; }
    const t = this.target;
    const ctl = new AbortController();
    this.abort = ctl;
    this.begin('downloading');
    try {
      const r = await fetch(fileUrl(t.cluster, t.namespace, t.pod, t.container, path), {
        credentials: 'same-origin', signal: ctl.signal, headers: { Accept: 'application/octet-stream, application/json' },
      });
      if (!r.ok || !r.body) { this.fail(r.status, await r.text()); return; }
      const length = Number(r.headers.get('Content-Length'));
      const total = Number.isFinite(length) && r.headers.has('Content-Length') ? length : null;
      const over = total === null ? '' : tooLarge(total, this.limits?.max_download, 'download');
      if (over) { ctl.abort(); this.setState('error', over); return; }
      const reader = r.body.getReader();
      const parts: Uint8Array[] = [];
      let done = 0;
      this.progress(0, total);
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) break;
        parts.push(value);
        done += value.length;
        this.progress(done, total);
      }
      if (total !== null && done !== total) {
        this.setState('error', `The download ended after ${sizeText(done)} of ${sizeText(total)}: tar in the container failed or the connection broke`);
        return;
      }
      this.save(parts, baseName(path));
      this.setState('done', `Downloaded ${path} (${sizeText(done)})`);
    } catch (e) {
      if (ctl.signal.aborted) { if (this.state === 'downloading') this.setState('error', 'Download cancelled'); return; }
      this.setState('error', `The download broke: ${e instanceof Error ? e.message : String(e)} (tar in the container may have failed)`);
    } finally {
      if (this.abort === ctl) this.abort = null;
    }
  }

  private save(parts: Uint8Array[], name: string): void {
    const blob = new Blob(parts as BlobPart[], { type: 'application/octet-stream' });
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: name, hidden: true });
    document.body.appendChild(a);
    a.click();
    a.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }

  /// Stops the transfer under way.
  cancel(): void {
    this.xhr?.abort();
    this.abort?.abort();
  }
}
