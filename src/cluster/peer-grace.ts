/**
 * Keeping a live node: a peer whose membership (/nodes/<node>, ephemeral)
 * went away is kept — its forwarding entries with it — for a grace period
 * after this node first saw it gone. A node cut off from ZooKeeper only (its
 * underlay to the peers fine) loses its session after the session timeout,
 * but its containers go on talking to the peers' for the grace period, and
 * it registers again as soon as ZooKeeper is reachable. A node that is really
 * gone loses its entries within session timeout + grace.
 *
 *   const peers = new PeerGrace({ graceMs: 120_000, log });
 *   const nodes = peers.members(await state.listNodes()); // live + lost within grace
 *   peers.nextChangeInMs(); // when a grace ends: run a pass then
 *
 * Only nodes this process saw alive are kept: a node gone before this
 * process started is not programmed.
 */
import type { Log } from '../log.js';
import type { NodeRecord } from '../model.js';

export interface PeerGraceOptions {
  graceMs: number;
  log?: Log;
  /** Clock (tests). */
  now?: () => number;
}

export class PeerGrace {
  /** The last record of every node seen alive, by name. */
  private readonly seen = new Map<string, NodeRecord>();
  /** Nodes gone from the store, since when (ms). */
  private readonly lostSince = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly opts: PeerGraceOptions) {
    this.now = opts.now ?? Date.now;
  }

  /**
   * The nodes to program entries toward: those alive in the store (`live`),
   * and those seen alive before whose grace is not over. Each loss, return
   * and end of grace is logged once.
   */
  members(live: readonly NodeRecord[]): NodeRecord[] {
    const now = this.now();
    const alive = new Set(live.map((n) => n.node));
    for (const rec of live) {
      const since = this.lostSince.get(rec.node);
      if (since !== undefined) {
        this.lostSince.delete(rec.node);
        this.opts.log?.info({ peer: rec.node, ip: rec.address, goneMs: now - since }, 'peer is back within its grace period');
      }
      this.seen.set(rec.node, rec);
    }
    const kept: NodeRecord[] = [];
    for (const [name, rec] of this.seen) {
      if (alive.has(name)) continue;
      let since = this.lostSince.get(name);
      if (since === undefined) {
        since = now;
        this.lostSince.set(name, now);
        this.opts.log?.warn(
          { peer: name, ip: rec.address, graceMs: this.opts.graceMs },
          'peer lost its cluster membership: its forwarding entries are kept for the grace period',
        );
      }
      if (now - since < this.opts.graceMs) {
        kept.push(rec);
        continue;
      }
      this.seen.delete(name);
      this.lostSince.delete(name);
      this.opts.log?.warn({ peer: name, ip: rec.address, goneMs: now - since }, 'peer gone longer than the grace period: its forwarding entries are removed');
    }
    return kept.length === 0 ? [...live] : [...live, ...kept];
  }

  /** Milliseconds until the next lost node's grace ends (a pass is due then); undefined if none is lost. */
  nextChangeInMs(): number | undefined {
    let next: number | undefined;
    const now = this.now();
    for (const since of this.lostSince.values()) {
      const left = Math.max(0, since + this.opts.graceMs - now);
      next = next === undefined ? left : Math.min(next, left);
    }
    return next;
  }
}
