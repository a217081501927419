/**
 * Whether this node is ready, and why not: a small model of named checks,
 * each answering a one-line reason or nothing. The plugin socket's `GET
 * /ready` (src/server/build-server.ts) and the metrics listener's answer
 * from `report()`; nothing else decides readiness.
 *
 * Checks wired in (serve.ts, main.ts): `store` (still connecting, or the
 * store refused as not this cluster's: server/core.ts, cluster/identity.ts),
 * `zookeeper` (connection lost for more than ~2 s, or an expired session not
 * registered again: session-health.ts), `reconcile` (3 passes in a row
 * failed: failure-streak.ts).
 *
 * Each change after the node was first ready is logged once: `not ready: …`
 * (warn, with the reasons) when it stops being ready or its reasons change,
 * `ready again` (info) when it is back. The start-up is told by serve.ts's own
 * lines (`socket open; still connecting…`, `tsoverlay ready`), so it is not
 * told twice. `watch()` evaluates every `everyMs`, so a change is logged
 * even when nobody asks.
 */
import { type Log, silentLog } from '../log.js';

export interface ReadinessReport {
  ready: boolean;
  /** One line each, `<check>: <reason>`, in the order the checks were added; empty when ready. */
  reasons: string[];
}

/** A check: why the node is not ready, or undefined when this part is fine. */
export type Check = () => string | undefined;

export class Readiness {
  private readonly checks = new Map<string, Check>();
  /** The last report's reasons, joined (undefined before the first report). */
  private last: string | undefined;
  private wasReady = false;
  private notReadySince = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: { log?: Log; now?: () => number } = {}) {}

  /** Add the check `name`, or replace it (a new start of the app brings new ones). */
  set(name: string, check: Check): void {
    this.checks.set(name, check);
  }

  /** Evaluate every check now; a change is logged once. */
  report(): ReadinessReport {
    const reasons: string[] = [];
    for (const [name, check] of this.checks) {
      let reason: string | undefined;
      try {
        reason = check();
      } catch (e) {
        reason = `check failed: ${e instanceof Error ? e.message : String(e)}`;
      }
      if (reason !== undefined) reasons.push(`${name}: ${reason}`);
    }
    const report = { ready: reasons.length === 0, reasons };
    this.note(report);
    return report;
  }

  /** Evaluate every `everyMs` until stop(), so each change is logged when it happens. */
  watch(everyMs = 250): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.report(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private note({ ready, reasons }: ReadinessReport): void {
    const key = reasons.join('; ');
    if (key === this.last) return;
    this.last = key;
    const log = this.opts.log ?? silentLog;
    const now = (this.opts.now ?? Date.now)();
    if (ready) {
      if (this.wasReady && this.notReadySince > 0) log.info({ reasons, notReadyMs: now - this.notReadySince }, 'ready again');
      this.wasReady = true;
      this.notReadySince = 0;
      return;
    }
    if (this.notReadySince === 0) this.notReadySince = now;
    if (this.wasReady) log.warn({ reasons }, `not ready: ${key}`);
  }
}

/** The one-line error of a report (`GET /ready`'s `Err`), or undefined when ready. */
export const readinessError = (r: ReadinessReport): string | undefined => (r.ready ? undefined : r.reasons.join('; '));
