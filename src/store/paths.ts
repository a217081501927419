/**
 * Every store path tsoverlay uses, built in one place. In ZooKeeper these sit
 * under the chroot of `--store zk://…/chroot`.
 *
 *   /nodes/<node>                      NodeRecord (ephemeral: the node is alive)
 *   /networks/<networkKey>             NetworkRecord (key = pool id of its first subnet)
 *   /netids/<engineNetworkId>          {network, node}: an engine's id for a cluster network
 *   /vnis/<vni>                        network key owning the VNI (create = claim)
 *   /pools                             (data bumped on every pool change: CAS for the overlap check)
 *   /pools/<poolId>                    PoolRecord
 *   /pools/<poolId>/<ip>               AddressRecord (create = claim, so an address is taken once)
 *   /endpoints/<networkKey>            (one folder per network)
 *   /endpoints/<networkKey>/<endpointId> EndpointRecord
 *   /dnsnames/<networkKey>             (one folder per network)
 *   /dnsnames/<networkKey>/<endpointId> DnsNameRecord: container name and aliases (resolver)
 *   /tombstones/<networkKey>           TombstoneRecord: the network was removed through Docker
 *                                      (the only thing that lets a node delete its devices)
 *   /cluster                           the cluster's identity (cluster/identity.ts)
 *   /collector                         EPHEMERAL {node}: the live node that collects (cluster/collector.ts)
 *   /gone/<node>                       GoneRecord: when the collector first saw a node gone (status; removed when it
 *                                      registers again or nothing names it any more)
 */
import { joinPath } from './kv-store.js';

export const ROOT_DIRS = ['/nodes', '/networks', '/netids', '/vnis', '/pools', '/endpoints', '/dnsnames', '/tombstones', '/gone'] as const;

export const networkPath = (networkId: string): string => joinPath('networks', networkId);
export const nodePath = (node: string): string => joinPath('nodes', node);
export const netidPath = (engineNetworkId: string): string => joinPath('netids', engineNetworkId);
export const vniPath = (vni: number): string => joinPath('vnis', String(vni));
export const POOLS = '/pools';
export const poolPath = (poolId: string): string => joinPath('pools', poolId);
export const addressPath = (poolId: string, ip: string): string => joinPath('pools', poolId, ip);
export const endpointsDir = (networkId: string): string => joinPath('endpoints', networkId);
export const endpointPath = (networkId: string, endpointId: string): string => joinPath('endpoints', networkId, endpointId);
export const dnsNamesDir = (networkId: string): string => joinPath('dnsnames', networkId);
export const dnsNamePath = (networkId: string, endpointId: string): string => joinPath('dnsnames', networkId, endpointId);
export const TOMBSTONES = '/tombstones';
export const COLLECTOR_LOCK = '/collector';
export const tombstonePath = (networkId: string): string => joinPath('tombstones', networkId);
export const GONE = '/gone';
export const gonePath = (node: string): string => joinPath('gone', node);

/** The first segment and the number of segments of a path, without allocating an array. */
const shape = (path: string): { top: string; depth: number } => {
  let depth = 0;
  let firstEnd = -1;
  for (let i = 0; i < path.length; i++) {
    if (path.charCodeAt(i) !== 47) continue; // '/'
    depth++;
    if (depth === 2) firstEnd = i;
  }
  return { top: path.slice(1, firstEnd === -1 ? path.length : firstEnd), depth };
};

/**
 * What the read cache (CachedKvStore) may keep: the lists and records every
 * reconcile pass and name-index refresh reads. Endpoint records are stable:
 * once created, only their own node changes them (the sandbox key, which only
 * that node reads), through its own cache.
 */
export const storeCachePolicy = {
  watchedDir: (path: string): boolean => {
    const { top, depth } = shape(path);
    return (depth === 1 && (top === 'networks' || top === 'nodes')) || (depth === 2 && (top === 'endpoints' || top === 'dnsnames'));
  },
  watchedRecord: (path: string): boolean => {
    const { top, depth } = shape(path);
    return (depth === 2 && (top === 'networks' || top === 'nodes')) || (depth === 3 && top === 'dnsnames');
  },
  stableRecord: (path: string): boolean => {
    const { top, depth } = shape(path);
    return depth === 3 && top === 'endpoints';
  },
};

/**
 * What a ZooKeeper watch on a path must see: a folder of the cache policy
 * changes by its children, a record by its data (anything else: both).
 */
export const watchKind = (path: string): 'children' | 'data' | 'both' =>
  storeCachePolicy.watchedDir(path) ? 'children' : storeCachePolicy.watchedRecord(path) ? 'data' : 'both';
