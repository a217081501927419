/**
 * Endpoint records of one network that claim the same IP or the same MAC
 * (the MAC is derived from the IP): e.g. an orphaned record whose address was
 * released and handed to a new container on another node. Peers cannot hold
 * two FDB entries for one MAC, and taking whichever comes last makes every
 * full pass flip between them. Pure rule, the same on every node and every
 * pass:
 *
 *   the newest record wins (largest creation stamp: ZooKeeper's czxid),
 *   then the larger endpoint id;
 *
 * a record that shares an IP or MAC with a winner is not programmed
 * (no FDB or neighbour entry toward it) and is reported as a conflict.
 */
import type { EndpointRecord } from '../model.js';

/** One record left out because a newer one holds its IP or MAC. */
export interface DuplicateConflict {
  network: string;
  /** What the two share: `ip 10.20.0.5` or `mac 02:42:…`. */
  shared: string;
  /** Programmed. */
  winner: EndpointRecord;
  /** Not programmed. */
  loser: EndpointRecord;
}

const bareIp = (cidr: string): string => cidr.split('/')[0] ?? cidr;

/** What an endpoint claims on the wire: its MAC and its addresses. */
const claims = (ep: EndpointRecord): string[] => [
  `mac ${ep.mac.toLowerCase()}`,
  ...(ep.ipv4 ? [`ip ${bareIp(ep.ipv4)}`] : []),
  ...(ep.ipv6 ? [`ip ${bareIp(ep.ipv6)}`] : []),
];

/**
 * The records to program, in their given order, and the conflicts. `created`
 * gives a record's creation stamp (missing: 0, the oldest).
 */
export const resolveDuplicates = (
  network: string,
  endpoints: readonly EndpointRecord[],
  created: (ep: EndpointRecord) => number,
): { programmed: EndpointRecord[]; conflicts: DuplicateConflict[] } => {
  const newestFirst = [...endpoints].sort((a, b) => created(b) - created(a) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const holder = new Map<string, EndpointRecord>();
  const losers = new Set<EndpointRecord>();
  const conflicts: DuplicateConflict[] = [];
  for (const ep of newestFirst) {
    const mine = claims(ep);
    const taken = mine.find((c) => holder.has(c));
    if (taken !== undefined) {
      losers.add(ep);
      conflicts.push({ network, shared: taken, winner: holder.get(taken) as EndpointRecord, loser: ep });
      continue;
    }
    for (const c of mine) holder.set(c, ep);
  }
  if (losers.size === 0) return { programmed: [...endpoints], conflicts };
  return { programmed: endpoints.filter((ep) => !losers.has(ep)), conflicts };
};

/** A conflict's identity, to report each once (while it lasts). */
export const conflictKey = (c: DuplicateConflict): string => `${c.network} ${c.loser.id} ${c.winner.id}`;
