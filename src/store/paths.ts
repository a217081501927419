/**
 * Every store path tsoverlay uses, built in one place. In ZooKeeper these sit
 * under the chroot of `--store zk://…/chroot`.
 *
 *   /networks/<networkId>              NetworkRecord
 *   /vnis/<vni>                        networkId owning the VNI (create = claim)
 *   /pools                             (data bumped on every pool change: CAS for the overlap check)
 *   /pools/<poolId>                    PoolRecord
 *   /pools/<poolId>/<ip>               AddressRecord (create = claim, so an address is taken once)
 *   /endpoints/<networkId>             (one folder per network)
 *   /endpoints/<networkId>/<endpointId> EndpointRecord
 */
import { joinPath } from './kv-store.js';

export const ROOT_DIRS = ['/networks', '/vnis', '/pools', '/endpoints'] as const;

export const networkPath = (networkId: string): string => joinPath('networks', networkId);
export const vniPath = (vni: number): string => joinPath('vnis', String(vni));
export const POOLS = '/pools';
export const poolPath = (poolId: string): string => joinPath('pools', poolId);
export const addressPath = (poolId: string, ip: string): string => joinPath('pools', poolId, ip);
export const endpointsDir = (networkId: string): string => joinPath('endpoints', networkId);
export const endpointPath = (networkId: string, endpointId: string): string => joinPath('endpoints', networkId, endpointId);
