// Keeps the browser login alive while a shell runs in this page.
//
// The gateway ends a session when the token it was opened with expires (after
// `sessions.credential_grace`), unless the browser login behind it is refreshed: any request
// with the session cookie refreshes the login when it is within 60 s of expiry, and the gateway
// then extends the sessions opened from it. A shell a person is typing into sends nothing but
// WebSocket frames, which refresh nothing, so while a terminal is open the page asks
// `/podgate/whoami` every `intervalMs` (well under those 60 s). With no terminal open it keeps
// no timer at all: a page left on the pickers is idle.

/// What one authenticated request found.
export type LoginCheck = 'ok' | 'unauthorized' | 'failed';

/// The timer functions the keepalive uses (the window's, or a test's fake clock).
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/// Asks every 30 s: a request inside each 60 s refresh window, and one more to spare.
export const KEEPALIVE_INTERVAL_MS = 30_000;

export class LoginKeepalive {
  /// Requests made (for the UI tests, through `window.podgate`).
  requests = 0;
  private timer: unknown = null;
  private wanted = false;
  /// The login is gone (a 401): nothing more to keep alive in this page.
  private lost = false;

  constructor(
    private readonly check: () => Promise<LoginCheck>,
    /// Called once, when a request answers 401.
    private readonly onLost: () => void,
    private readonly timers: Timers,
    readonly intervalMs: number = KEEPALIVE_INTERVAL_MS,
  ) {}

  /// Whether a timer is set or a request is in flight on its behalf.
  get running(): boolean {
    return this.wanted && !this.lost;
  }

  /// Tells how many terminals are open: asks while there is at least one, stops at none.
  setOpenTerminals(n: number): void {
    const want = n > 0;
    if (want === this.wanted) return;
    this.wanted = want;
    if (want) this.schedule();
    else this.cancel();
  }

  private schedule(): void {
    if (this.lost || this.timer !== null) return;
    this.timer = this.timers.setTimeout(() => void this.tick(), this.intervalMs);
  }

  private cancel(): void {
    if (this.timer === null) return;
    this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  private async tick(): Promise<void> {
    this.timer = null;
    if (!this.wanted || this.lost) return;
    this.requests++;
    let result: LoginCheck;
    try {
      result = await this.check();
    } catch {
      result = 'failed';
    }
    if (result === 'unauthorized') {
      if (this.lost) return;
      this.lost = true;
      this.cancel();
      this.onLost();
      return;
    }
    // A failed request (podgate restarting, a network blip) is retried at the next interval.
    // The chain is set again only after the answer, so requests never overlap; a terminal
    // opened meanwhile may already have started a new timer.
    if (this.wanted) this.schedule();
  }
}
