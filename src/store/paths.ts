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
 */
import { joinPath } from './kv-store.js';

export const ROOT_DIRS = ['/nodes', '/networks', '/netids', '/vnis', '/pools', '/endpoints', '/dnsnames'] as const;

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
