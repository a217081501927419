/**
 * The ZooKeeper session as readiness sees it (readiness.ts, check
 * `zookeeper`): not ready while the connection has been lost for more than
 * `graceMs` (a server restart or a leader change reconnects within it), or
 * after the session expired until this node is registered again in the new
 * one (main.ts says when). Fed with the store's session events; the
 * embedded store has none and is always fine.
 */
import type { SessionEvent } from '../store/kv-store.js';

/** A connection lost for longer than this makes the node not ready. */
export const SESSION_GRACE_MS = 2000;

export class SessionHealth {
  /** When the connection was lost (undefined while connected). */
  private lostAt: number | undefined;
  /** The session expired and this node is not registered in a new one yet. */
  private expiredAt: number | undefined;

  constructor(private readonly opts: { graceMs?: number; now?: () => number } = {}) {}

  event(e: SessionEvent): void {
    const now = this.now();
    if (e === 'disconnected') this.lostAt ??= now;
    else if (e === 'expired') {
      this.expiredAt ??= now;
      this.lostAt ??= now;
    } else this.lostAt = undefined; // 'connected' (a new session) or 'reconnected' (the same one)
  }

  /** This node is registered in the current session (after an expiry). */
  registered(): void {
    this.expiredAt = undefined;
  }

  /** Why the session makes the node not ready, or undefined. Stable while nothing changes (logged on change). */
  reason(): string | undefined {
    if (this.expiredAt !== undefined) {
      return `ZooKeeper session expired at ${iso(this.expiredAt)}; this node is not registered in a new session yet`;
    }
    if (this.lostAt !== undefined && this.now() - this.lostAt > (this.opts.graceMs ?? SESSION_GRACE_MS)) {
      return `ZooKeeper connection lost since ${iso(this.lostAt)}`;
    }
    return undefined;
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }
}

const iso = (ms: number): string => new Date(ms).toISOString();
