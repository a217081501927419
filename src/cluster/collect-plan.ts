/**
 * What garbage collection may remove, decided from observations alone
 * (pure; cluster/collector.ts reads, acts and keeps the timers). Absence is
 * evidence only when it lasts: a node must stay gone, an endpoint must stay
 * unknown to its engine, across checks that span the configured time.
 */

/** When each subject (a node, an endpoint) was first seen missing, by id. */
export type MissingSince = ReadonlyMap<string, number>;

export interface Decision {
  /** Missing long enough: collect now. */
  collect: string[];
  /** The timers to keep for the next check (subjects missing, not yet collected). */
  missing: Map<string, number>;
}

/**
 * Gone nodes to collect: every node some record names (`referenced`) that
 * is neither live nor this node, gone since a check at least `afterMs` ago.
 * A node seen live again starts over.
 */
export const goneNodes = (o: {
  referenced: Iterable<string>;
  live: ReadonlySet<string>;
  self: string;
  since: MissingSince;
  now: number;
  afterMs: number;
}): Decision => {
  const collect: string[] = [];
  const missing = new Map<string, number>();
  for (const node of new Set(o.referenced)) {
    if (node === o.self || o.live.has(node)) continue;
    const since = o.since.get(node) ?? o.now;
    if (o.now - since >= o.afterMs) collect.push(node);
    else missing.set(node, since);
  }
  return { collect: collect.sort(), missing };
};

/** One endpoint record of this node, and what its engine said about its network. */
export interface OwnEndpoint {
  id: string;
  /** The engine answered for every alias of the endpoint's network on this node. */
  checked: boolean;
  /** The engine lists the endpoint. */
  known: boolean;
}

/**
 * This node's endpoint records its engine no longer has: unknown in two
 * checks at least `graceMs` apart (a CreateEndpoint whose Join is still on
 * its way is unknown for a moment). A check the engine did not answer
 * proves nothing and starts the endpoint over.
 */
export const orphanEndpoints = (o: { endpoints: readonly OwnEndpoint[]; since: MissingSince; now: number; graceMs: number }): Decision => {
  const collect: string[] = [];
  const missing = new Map<string, number>();
  for (const ep of o.endpoints) {
    if (!ep.checked || ep.known) continue;
    const since = o.since.get(ep.id);
    if (since !== undefined && o.now - since >= o.graceMs) collect.push(ep.id);
    else missing.set(ep.id, since ?? o.now);
  }
  return { collect: collect.sort(), missing };
};
