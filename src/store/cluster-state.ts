/**
 * Typed access to tsoverlay's records on top of a KvStore. The core (driver,
 * IPAM, reconciler) uses only this class; it turns store conflicts into
 * TsoverlayErrors with messages a user can act on.
 *
 * A thin facade over one object per record family (./state/), which hold the
 * logic and its documentation; they share one StoreAccess (the store, the
 * decoded-record cache, STORE_UNAVAILABLE mapping):
 *   networks.ts   networks, engine aliases, VNI claims
 *   pools.ts      pools and claimed addresses
 *   endpoints.ts  endpoints
 *   names.ts      published names (resolver)
 *   nodes.ts      node membership (ephemeral)
 *   collection.ts what garbage collection removes (cluster/collector.ts)
 *
 * Every shared decision is a compare-and-set or an exclusive create, so two
 * writers (two requests, or two nodes) can never both win:
 * - a VNI is claimed by creating /vnis/<vni>;
 * - an address is claimed by creating /pools/<pool>/<ip>;
 * - a pool is added with a versioned write of /pools, so a concurrent pool
 *   that overlaps makes one of the two commits fail and re-check.
 */
import type { AddressRecord, DnsNameRecord, EndpointRecord, NetworkRecord, NodeRecord, PoolRecord, TombstoneRecord } from '../model.js';
import { KvConflict, type KvOp, type KvStore } from './kv-store.js';
import { ROOT_DIRS } from './paths.js';
import { CollectionState } from './state/collection.js';
import { EndpointState } from './state/endpoints.js';
import { NameState } from './state/names.js';
import { NetworkState } from './state/networks.js';
import { NodeState } from './state/nodes.js';
import { type PoolSet, PoolState } from './state/pools.js';
import { type BadRecord, StoreAccess, guarded } from './state/store-access.js';
import type { Log } from '../log.js';

export type { PoolSet } from './state/pools.js';
export type { BadRecord } from './state/store-access.js';

export class ClusterState {
  readonly networks: NetworkState;
  readonly pools: PoolState;
  readonly endpoints: EndpointState;
  readonly names: NameState;
  readonly nodes: NodeState;
  readonly collection: CollectionState;

  private readonly access: StoreAccess;

  constructor(
    private readonly kv: KvStore,
    opts: { log?: Log } = {},
  ) {
    const access = new StoreAccess(kv, opts.log);
    this.access = access;
    this.networks = new NetworkState(access);
    this.pools = new PoolState(access);
    this.endpoints = new EndpointState(access);
    this.names = new NameState(access);
    this.nodes = new NodeState(access);
    this.collection = new CollectionState(access);
  }

  /** Create the top-level folders if missing. Safe to run on every start. */
  async init(): Promise<void> {
    for (const dir of ROOT_DIRS) {
      await guarded(async () => {
        try {
          await this.kv.commit([{ type: 'create', path: dir, data: '' }]);
        } catch (e) {
          if (!(e instanceof KvConflict && e.reason === 'exists')) throw e;
        }
      });
    }
  }

  watch(path: string, listener: () => void): () => void {
    return this.kv.watch(path, listener);
  }

  get store(): KvStore {
    return this.kv;
  }

  /** Records the lists skipped because they do not decode (reported in the log once each). */
  badRecords(): BadRecord[] {
    return this.access.badRecords();
  }

  // ---- networks (state/networks.ts) ----------------------------------------

  holdKeptVni(vni: number, node: string): Promise<boolean> {
    return this.networks.holdKeptVni(vni, node);
  }

  listTombstones(): Promise<TombstoneRecord[]> {
    return this.networks.listTombstones();
  }

  getNetwork(key: string): Promise<NetworkRecord | undefined> {
    return this.networks.getNetwork(key);
  }

  getNetworkVersioned(key: string): Promise<{ value: NetworkRecord; version: number } | undefined> {
    return this.networks.getNetworkVersioned(key);
  }

  listNetworks(): Promise<NetworkRecord[]> {
    return this.networks.listNetworks();
  }

  /** The cluster network an engine's network id stands for (cached: it never changes). */
  resolveNetwork(engineNetworkId: string): Promise<string | undefined> {
    return this.networks.resolveNetwork(engineNetworkId);
  }

  usedVnis(): Promise<Set<number>> {
    return this.networks.usedVnis();
  }

  /** A new network with its first alias and its VNI claim, in one commit (VNI_IN_USE, STORE_CONFLICT). */
  createNetwork(rec: NetworkRecord, engineNetworkId: string, node: string): Promise<void> {
    return this.networks.createNetwork(rec, engineNetworkId, node);
  }

  /** Compare-and-set of a network record, retried; `change` returns the new record (and extra ops) or undefined. */
  updateNetwork(
    key: string,
    change: (n: NetworkRecord) => { next: NetworkRecord; ops?: KvOp[] } | undefined,
  ): Promise<NetworkRecord | undefined> {
    return this.networks.updateNetwork(key, change);
  }

  /** Map an engine's network id to a cluster network (idempotent). */
  addAlias(key: string, engineNetworkId: string, node: string, extra?: (n: NetworkRecord) => NetworkRecord): Promise<NetworkRecord | undefined> {
    return this.networks.addAlias(key, engineNetworkId, node, extra);
  }

  /** Drop one engine's alias; the network goes with its last alias. Returns what is left. */
  removeAlias(key: string, engineNetworkId: string, markDeleted: boolean): Promise<NetworkRecord | undefined> {
    return this.networks.removeAlias(key, engineNetworkId, markDeleted);
  }

  // ---- pools and addresses (state/pools.ts) --------------------------------

  listPools(): Promise<PoolSet> {
    return this.pools.listPools();
  }

  getPool(id: string): Promise<PoolRecord | undefined> {
    return this.pools.getPool(id);
  }

  /** Add a pool if /pools is still at `expectedVersion`; false if not (re-read and re-check). */
  createPool(rec: PoolRecord, expectedVersion: number): Promise<boolean> {
    return this.pools.createPool(rec, expectedVersion);
  }

  getPoolVersioned(id: string): Promise<{ value: PoolRecord; version: number } | undefined> {
    return this.pools.getPoolVersioned(id);
  }

  /** Compare-and-set of a pool record; false if it changed since `version`. */
  setPool(rec: PoolRecord, version: number): Promise<boolean> {
    return this.pools.setPool(rec, version);
  }

  /** Remove a pool and every address claimed in it. False if it was not stored. */
  deletePool(id: string): Promise<boolean> {
    return this.pools.deletePool(id);
  }

  /** Bare IPs claimed in a pool. */
  claimedAddresses(poolId: string): Promise<string[]> {
    return this.pools.claimedAddresses(poolId);
  }

  getAddress(poolId: string, ip: string): Promise<AddressRecord | undefined> {
    return this.pools.getAddress(poolId, ip);
  }

  /** Claim an address; false if it is already taken. */
  claimAddress(poolId: string, rec: AddressRecord): Promise<boolean> {
    return this.pools.claimAddress(poolId, rec);
  }

  /** Release an address; false if it was not claimed. */
  releaseAddress(poolId: string, ip: string): Promise<boolean> {
    return this.pools.releaseAddress(poolId, ip);
  }

  // ---- nodes (state/nodes.ts) ----------------------------------------------

  /** Register this node as alive (an ephemeral node); KvConflict 'exists' if taken. */
  registerNode(rec: NodeRecord): Promise<void> {
    return this.nodes.registerNode(rec);
  }

  /** Who holds a node name: undefined, this session, or another live session. */
  nodeHolder(node: string): Promise<{ rec: NodeRecord; mine: boolean; version: number } | undefined> {
    return this.nodes.nodeHolder(node);
  }
  rewriteNode(rec: NodeRecord, version: number): Promise<boolean> {
    return this.nodes.rewriteNode(rec, version);
  }


  listNodes(): Promise<NodeRecord[]> {
    return this.nodes.listNodes();
  }

  // ---- endpoints (state/endpoints.ts) --------------------------------------

  getEndpoint(networkId: string, endpointId: string): Promise<EndpointRecord | undefined> {
    return this.endpoints.getEndpoint(networkId, endpointId);
  }

  /** The keys of every network's endpoint folder (a network whose record cannot be read among them). */
  endpointNetworks(): Promise<string[]> {
    return this.endpoints.endpointNetworks();
  }

  listEndpoints(networkId: string): Promise<EndpointRecord[]> {
    return this.endpoints.listEndpoints(networkId);
  }

  /** The endpoints with their records' creation stamps. */
  listEndpointsStamped(networkId: string): Promise<{ endpoints: EndpointRecord[]; created: Map<string, number> }> {
    return this.endpoints.listEndpointsStamped(networkId);
  }

  /** Store a new endpoint. Succeeds without change if the same record exists. */
  createEndpoint(rec: EndpointRecord): Promise<void> {
    return this.endpoints.createEndpoint(rec);
  }

  /** Remove an endpoint and its published names. False if it was not stored. */
  deleteEndpoint(networkId: string, endpointId: string): Promise<boolean> {
    return this.endpoints.deleteEndpoint(networkId, endpointId);
  }

  /** Record the sandbox an endpoint joined (last writer wins: only its owner writes it). */
  setEndpointSandbox(networkId: string, endpointId: string, sandboxKey: string): Promise<void> {
    return this.endpoints.setEndpointSandbox(networkId, endpointId, sandboxKey);
  }

  // ---- published names (state/names.ts) ------------------------------------

  /** Create or replace the names of an endpoint; false if the endpoint (or its network) is gone. */
  putDnsName(rec: DnsNameRecord): Promise<boolean> {
    return this.names.putDnsName(rec);
  }

  getDnsName(networkId: string, endpointId: string): Promise<DnsNameRecord | undefined> {
    return this.names.getDnsName(networkId, endpointId);
  }

  listDnsNames(networkId: string): Promise<DnsNameRecord[]> {
    return this.names.listDnsNames(networkId);
  }
}
