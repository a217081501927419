/**
 * Who uses a network elsewhere: the live nodes other than this one with
 * endpoints in it. A network they use is not removed from the cluster when a
 * node that does not use it removes it (docs/cluster-state.md). Endpoints of
 * nodes that are gone do not hold a network (they are leaks, not users).
 */
import type { EndpointRecord } from '../model.js';
import type { ClusterState } from '../store/cluster-state.js';

/** [node, endpoint count] of every live node but `me` with endpoints in `eps`, sorted by node. */
export const usersElsewhere = async (state: ClusterState, eps: readonly EndpointRecord[], me: string): Promise<Array<[string, number]>> => {
  const live = new Set((await state.listNodes()).map((n) => n.node));
  const count = new Map<string, number>();
  for (const ep of eps) if (ep.node !== me && live.has(ep.node)) count.set(ep.node, (count.get(ep.node) ?? 0) + 1);
  return [...count].sort(([a], [b]) => a.localeCompare(b));
};
