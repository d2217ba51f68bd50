// The one pane that shows the sessions, observe, recordings and replay pages: the page the URL
// names is built when shown and given up (its WebSocket closed, its timers stopped) when
// another page or a terminal is shown.

import { h } from './dom';
import { ObserveView } from './observe';
import { RecordingsPage } from './recordings';
import { ReplayView } from './replay';
import { SessionsPage } from './sessions';
import type { ThemeName } from './theme';
import * as views from './views';

export class Pages {
  readonly element = h('div', { class: 'page-pane', hidden: true });
  private current: views.View | null = null;
  private shown = '';

  constructor(private theme: ThemeName) {}

  /// Shows the page of `route`; the same URL again keeps the page as it is.
  show(route: views.ViewRoute, hash: string): void {
    this.element.hidden = false;
    if (this.current && this.shown === hash) return;
    this.hide();
    this.element.hidden = false;
    this.shown = hash;
    const view: views.View = route.view === 'sessions' ? new SessionsPage()
      : route.view === 'observe' ? new ObserveView(route.id, this.theme)
        : route.view === 'recordings' ? new RecordingsPage({ ...route.filter }, route.limit)
          : new ReplayView(route.id, this.theme);
    this.current = view;
    this.element.appendChild(view.element);
    view.start();
  }

  hide(): void {
    this.element.hidden = true;
    this.current?.dispose();
    this.current = null;
    this.shown = '';
  }

  setTheme(theme: ThemeName): void {
    this.theme = theme;
    this.current?.setTheme?.(theme);
  }

  testView(): unknown {
    return this.current?.testView() ?? null;
  }
}
