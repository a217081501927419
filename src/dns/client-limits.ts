/**
 * Per-client limits of the node resolver, by source address, so that one
 * container cannot take the node's whole forwarding budget from the others:
 *
 * - a token bucket per source: `rate` queries per second, bursts of up to
 *   `burst` (default 2 × rate) after a quiet spell; a query without a token
 *   is dropped unanswered (the client retries as after a lost packet);
 * - at most `maxInflight` forwarded queries of one source waiting for an
 *   upstream at once (the node-wide cap is the resolver's maxForwards).
 *
 * Drops are counted, and reported at most once per source per `reportEveryMs`
 * with the number dropped since the last report. Buckets of sources quiet
 * long enough to be full again are forgotten. Pure apart from the clock.
 */

export interface ClientLimitsOptions {
  /** Queries per second per source. */
  rate: number;
  /** Bucket size (default 2 × rate). */
  burst?: number;
  /** Forwards of one source in flight at once. */
  maxInflight: number;
  /** At most one report per source this often (default 10 s). */
  reportEveryMs?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
  inflight: number;
  dropped: number;
  reportedAt: number;
}

/** A dropped query: `report` is set when it is time to say so (the count since the last report). */
export type Admission = { ok: true } | { ok: false; report?: number };

export class ClientLimits {
  readonly rate: number;
  readonly burst: number;
  readonly maxInflight: number;
  /** Queries dropped by the rate limit, all sources. */
  dropped = 0;
  readonly #reportEveryMs: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();
  #sweptAt: number;

  constructor(opts: ClientLimitsOptions) {
    this.rate = opts.rate;
    this.burst = opts.burst ?? opts.rate * 2;
    this.maxInflight = opts.maxInflight;
    this.#reportEveryMs = opts.reportEveryMs ?? 10_000;
    this.#now = opts.now ?? Date.now;
    this.#sweptAt = this.#now();
  }

  /** Take a token for one query of `source`. */
  admit(source: string): Admission {
    const now = this.#now();
    this.#sweep(now);
    const b = this.#bucket(source, now);
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    b.dropped++;
    this.dropped++;
    if (now - b.reportedAt < this.#reportEveryMs) return { ok: false };
    const report = b.dropped;
    b.dropped = 0;
    b.reportedAt = now;
    return { ok: false, report };
  }

  /** Start a forward for `source`; false if it already has maxInflight waiting. */
  startForward(source: string): boolean {
    const b = this.#bucket(source, this.#now());
    if (b.inflight >= this.maxInflight) return false;
    b.inflight++;
    return true;
  }

  endForward(source: string): void {
    const b = this.#buckets.get(source);
    if (b && b.inflight > 0) b.inflight--;
  }

  /** Sources tracked now (for tests). */
  get tracked(): number {
    return this.#buckets.size;
  }

  #bucket(source: string, now: number): Bucket {
    let b = this.#buckets.get(source);
    if (!b) {
      b = { tokens: this.burst, at: now, inflight: 0, dropped: 0, reportedAt: -Infinity };
      this.#buckets.set(source, b);
    }
    return b;
  }

  /** Forget sources whose bucket has refilled and that wait for nothing (every reportEveryMs). */
  #sweep(now: number): void {
    if (now - this.#sweptAt < this.#reportEveryMs) return;
    this.#sweptAt = now;
    const refill = (this.burst / this.rate) * 1000;
    for (const [source, b] of this.#buckets) {
      if (b.inflight === 0 && now - b.at >= refill && now - b.reportedAt >= this.#reportEveryMs) this.#buckets.delete(source);
    }
  }
}
