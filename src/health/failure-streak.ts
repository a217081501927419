/**
 * Consecutive failures of a repeated job (readiness check `reconcile`: its
 * passes): not ready once `limit` runs in a row failed, ready again after
 * the next success. Skipped runs (the store refused, readiness says so
 * already) count neither way.
 */
export type Outcome = 'ok' | 'failed' | 'skipped';

export class FailureStreak {
  private streak = 0;

  constructor(private readonly opts: { what: string; limit?: number }) {}

  record(outcome: Outcome): void {
    if (outcome === 'ok') this.streak = 0;
    else if (outcome === 'failed') this.streak++;
  }

  /** Why the node is not ready, or undefined. The text does not change with the count (a change is logged). */
  reason(): string | undefined {
    const limit = this.opts.limit ?? 3;
    return this.streak >= limit ? `${limit} or more ${this.opts.what} in a row failed (see the log)` : undefined;
  }
}
