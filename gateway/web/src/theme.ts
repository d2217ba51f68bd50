// Light and dark themes for the page and every terminal; the choice is remembered.

import type { ITheme } from '@xterm/xterm';

export type ThemeName = 'light' | 'dark';
const KEY = 'podgate.theme';

export const TERMINAL_THEMES: Record<ThemeName, ITheme> = {
  dark: {
    background: '#1b1e23',
    foreground: '#d8dee9',
    cursor: '#e5e9f0',
    selectionBackground: '#4c566a',
    black: '#3b4252', red: '#e06c75', green: '#98c379', yellow: '#e5c07b',
    blue: '#61afef', magenta: '#c678dd', cyan: '#56b6c2', white: '#e5e9f0',
    brightBlack: '#5c6370', brightRed: '#ff7b86', brightGreen: '#b5e08d', brightYellow: '#ffd68a',
    brightBlue: '#7cc4ff', brightMagenta: '#de96f5', brightCyan: '#6fd3df', brightWhite: '#ffffff',
  },
  light: {
    background: '#fbfbfc',
    foreground: '#24292f',
    cursor: '#24292f',
    selectionBackground: '#b6d4fe',
    black: '#24292f', red: '#c4242b', green: '#1a7f37', yellow: '#8a6300',
    blue: '#0a58ca', magenta: '#8250df', cyan: '#0b7285', white: '#6e7781',
    brightBlack: '#57606a', brightRed: '#a40e26', brightGreen: '#116329', brightYellow: '#6b4c00',
    brightBlue: '#0550ae', brightMagenta: '#6639ba', brightCyan: '#095c6b', brightWhite: '#8c959f',
  },
};

export function initial(): ThemeName {
  let saved: string | null = null;
  try {
    saved = localStorage.getItem(KEY);
  } catch {
    // storage disabled: fall back to the system preference
  }
  if (saved === 'light' || saved === 'dark') return saved;
  return window.matchMedia?.('(prefers-color-scheme: light)').matches ? 'light' : 'dark';
}

export function apply(name: ThemeName): void {
  document.documentElement.dataset.theme = name;
}

/// Applies `name` and keeps it for the next visit.
export function choose(name: ThemeName): void {
  apply(name);
  try {
    localStorage.setItem(KEY, name);
  } catch {
    // not remembered, still applied
  }
}
