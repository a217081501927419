/**
 * Typed access to tsoverlay's records on top of a KvStore. The core (driver,
 * IPAM, reconciler) uses only this class; it turns store conflicts into
 * TsoverlayErrors with messages a user can act on.
 *
 * Every shared decision is a compare-and-set or an exclusive create, so two
 * writers (two requests, or two nodes) can never both win:
 * - a VNI is claimed by creating /vnis/<vni>;
 * - an address is claimed by creating /pools/<pool>/<ip>;
 * - a pool is added with a versioned write of /pools, so a concurrent pool
 *   that overlaps makes one of the two commits fail and re-check.
 */
import { TsoverlayError } from '../errors.js';
import type { AddressRecord, DnsNameRecord, EndpointRecord, NetworkRecord, NodeRecord, PoolRecord } from '../model.js';
import type { Schema } from '../util/schema.js';
import { KvConflict, KvUnavailable, getMany, type KvOp, type KvStore, type Versioned } from './kv-store.js';
import {
  POOLS,
  ROOT_DIRS,
  addressPath,
  dnsNamePath,
  dnsNamesDir,
  endpointPath,
  endpointsDir,
  netidPath,
  networkPath,
  nodePath,
  poolPath,
  vniPath,
} from './paths.js';
import { AddressSchema, AliasSchema, DnsNameSchema, EndpointSchema, NetworkSchema, NodeSchema, PoolSchema, decode } from './records.js';

const json = (v: unknown): string => JSON.stringify(v);

const present = <T>(values: ReadonlyArray<T | undefined>): T[] => values.filter((v): v is T => v !== undefined);

/** Run a store call, mapping an unreachable store to STORE_UNAVAILABLE. */
const guarded = async <T>(fn: () => Promise<T>): Promise<T> => {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof KvUnavailable) {
      throw new TsoverlayError('STORE_UNAVAILABLE', 'cluster store unavailable; try again when ZooKeeper is reachable', { cause: e });
    }
    throw e;
  }
};

export interface PoolSet {
  pools: PoolRecord[];
  /** Version of /pools: pass it to createPool for the compare-and-set. */
  version: number;
}

/** Freeze a decoded record and everything in it: cached records are shared by every reader. */
const deepFreeze = <T>(v: T): T => {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
};

export class ClusterState {
  private readonly aliasCache = new Map<string, string>();
  /**
   * Decoded records by the stored value they came from: the read cache hands
   * out the same object until the entry changes, so each is decoded once.
   */
  private readonly decoded = new WeakMap<Versioned, unknown>();

  constructor(private readonly kv: KvStore) {}

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

  private decodeOnce<T>(schema: Schema<T>, v: Versioned, where: string): T {
    const hit = this.decoded.get(v);
    if (hit !== undefined) return hit as T;
    const value = deepFreeze(decode(schema, v.data, where));
    this.decoded.set(v, value);
    return value;
  }

  /** The records at `paths` that exist, read in one batch and decoded once each. */
  private async readAll<T>(schema: Schema<T>, paths: readonly string[]): Promise<T[]> {
    const values = await guarded(() => getMany(this.kv, paths));
    return present(values.map((v, i) => v && this.decodeOnce(schema, v, paths[i] as string)));
  }

  watch(path: string, listener: () => void): () => void {
    return this.kv.watch(path, listener);
  }

  get store(): KvStore {
    return this.kv;
  }

  // ---- networks ---------------------------------------------------------

  async getNetwork(key: string): Promise<NetworkRecord | undefined> {
    return (await this.getNetworkVersioned(key))?.value;
  }

  async getNetworkVersioned(key: string): Promise<{ value: NetworkRecord; version: number } | undefined> {
    const v = await guarded(() => this.kv.get(networkPath(key)));
    return v ? { value: this.decodeOnce(NetworkSchema, v, networkPath(key)) as NetworkRecord, version: v.version } : undefined;
  }

  async listNetworks(): Promise<NetworkRecord[]> {
    const ids = await guarded(() => this.kv.children('/networks'));
    const paths = ids.map((id) => networkPath(id));
    return (await this.readAll(NetworkSchema, paths)) as NetworkRecord[];
  }

  /** The cluster network an engine's network id stands for (cached: it never changes). */
  async resolveNetwork(engineNetworkId: string): Promise<string | undefined> {
    const hit = this.aliasCache.get(engineNetworkId);
    if (hit) return hit;
    const v = await guarded(() => this.kv.get(netidPath(engineNetworkId)));
    if (!v) return undefined;
    const alias = decode(AliasSchema, v.data, netidPath(engineNetworkId));
    this.aliasCache.set(engineNetworkId, alias.network);
    return alias.network;
  }

  async usedVnis(): Promise<Set<number>> {
    const names = await guarded(() => this.kv.children('/vnis'));
    return new Set(names.map(Number).filter(Number.isInteger));
  }

  /**
   * Store a new cluster network with its first alias and claim its VNI, in
   * one commit. Throws VNI_IN_USE if another network holds the VNI and
   * STORE_CONFLICT if the key was taken meanwhile (the caller re-reads).
   */
  async createNetwork(rec: NetworkRecord, engineNetworkId: string, node: string): Promise<void> {
    const ops: KvOp[] = [
      { type: 'create', path: vniPath(rec.vni), data: rec.id },
      { type: 'create', path: networkPath(rec.id), data: json(rec) },
      { type: 'create', path: endpointsDir(rec.id), data: '' },
      { type: 'create', path: dnsNamesDir(rec.id), data: '' },
      { type: 'create', path: netidPath(engineNetworkId), data: json({ network: rec.id, node }) },
    ];
    try {
      await guarded(() => this.kv.commit(ops));
    } catch (e) {
      if (!(e instanceof KvConflict)) throw e;
      if (e.op.path === vniPath(rec.vni)) {
        throw new TsoverlayError('VNI_IN_USE', `VNI ${rec.vni} is already used by another tsoverlay network`);
      }
      throw new TsoverlayError('STORE_CONFLICT', `network ${rec.id} changed while it was being created; try again`, { cause: e });
    }
  }

  /**
   * Read-modify-write of a network record with compare-and-set, retried on
   * conflicts. `change` returns the new record, or undefined to leave it.
   * Extra ops (e.g. an alias create) commit atomically with the write.
   */
  async updateNetwork(
    key: string,
    change: (n: NetworkRecord) => { next: NetworkRecord; ops?: KvOp[] } | undefined,
  ): Promise<NetworkRecord | undefined> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const cur = await this.getNetworkVersioned(key);
      if (!cur) return undefined;
      const r = change(cur.value);
      if (!r) return cur.value;
      try {
        await guarded(() =>
          this.kv.commit([{ type: 'set', path: networkPath(key), data: json(r.next), version: cur.version }, ...(r.ops ?? [])]),
        );
        return r.next;
      } catch (e) {
        if (!(e instanceof KvConflict)) throw e;
        if (e.op.path !== networkPath(key)) {
          throw new TsoverlayError('STORE_CONFLICT', `could not update network ${key}: ${e.message}`, { cause: e });
        }
      }
    }
    throw new TsoverlayError('STORE_CONFLICT', `network ${key} kept changing; try again`);
  }

  /** Map an engine's network id to a cluster network (idempotent). */
  async addAlias(key: string, engineNetworkId: string, node: string, extra?: (n: NetworkRecord) => NetworkRecord): Promise<NetworkRecord | undefined> {
    const exists = await guarded(() => this.kv.get(netidPath(engineNetworkId)));
    return this.updateNetwork(key, (n) => {
      const withAlias = { ...n, aliases: { ...n.aliases, [engineNetworkId]: node } };
      const next = extra ? extra(withAlias) : withAlias;
      if (exists && json(next) === json(n)) return undefined;
      return {
        next,
        ops: exists ? [] : [{ type: 'create', path: netidPath(engineNetworkId), data: json({ network: key, node }) }],
      };
    });
  }

  /**
   * Drop one engine's alias. With `markDeleted` the network is flagged removed
   * on every node. When no alias is left the whole network goes: record,
   * endpoints and VNI claim. Returns what is left (undefined once gone).
   */
  async removeAlias(key: string, engineNetworkId: string, markDeleted: boolean): Promise<NetworkRecord | undefined> {
    this.aliasCache.delete(engineNetworkId);
    for (let attempt = 0; attempt < 10; attempt++) {
      const cur = await this.getNetworkVersioned(key);
      const aliasNode = await guarded(() => this.kv.get(netidPath(engineNetworkId)));
      const aliasOps: KvOp[] = aliasNode ? [{ type: 'delete', path: netidPath(engineNetworkId), version: -1 }] : [];
      if (!cur) {
        if (aliasOps.length > 0) await this.commitIdempotent(aliasOps);
        return undefined;
      }
      const aliases = { ...cur.value.aliases };
      delete aliases[engineNetworkId];
      const next: NetworkRecord = { ...cur.value, aliases, deleted: cur.value.deleted || markDeleted };
      let ops: KvOp[];
      if (Object.keys(aliases).length > 0) {
        ops = [{ type: 'set', path: networkPath(key), data: json(next), version: cur.version }, ...aliasOps];
      } else {
        const eps = await guarded(() => this.kv.children(endpointsDir(key)));
        const names = await guarded(() => this.kv.children(dnsNamesDir(key)));
        const namesDir = await guarded(() => this.kv.get(dnsNamesDir(key)));
        const owner = await guarded(() => this.kv.get(vniPath(cur.value.vni)));
        ops = [
          ...eps.map((e): KvOp => ({ type: 'delete', path: endpointPath(key, e), version: -1 })),
          { type: 'delete', path: endpointsDir(key), version: -1 },
          ...names.map((e): KvOp => ({ type: 'delete', path: dnsNamePath(key, e), version: -1 })),
          ...(namesDir ? [{ type: 'delete', path: dnsNamesDir(key), version: -1 } as KvOp] : []),
          { type: 'delete', path: networkPath(key), version: cur.version },
          ...(owner?.data === key ? [{ type: 'delete', path: vniPath(cur.value.vni), version: owner.version } as KvOp] : []),
          ...aliasOps,
        ];
      }
      try {
        await guarded(() => this.kv.commit(ops));
        return Object.keys(aliases).length > 0 ? next : undefined;
      } catch (e) {
        if (!(e instanceof KvConflict)) throw e; // raced with another node: re-read
      }
    }
    throw new TsoverlayError('STORE_CONFLICT', `network ${key} kept changing while removing it; try again`);
  }

  // ---- pools and addresses ----------------------------------------------

  async listPools(): Promise<PoolSet> {
    return guarded(async () => {
      const root = await this.kv.get(POOLS);
      const ids = await this.kv.children(POOLS);
      const paths = ids.map((id) => poolPath(id));
      const values = await getMany(this.kv, paths);
      const pools = present(values.map((v, i) => v && (decode(PoolSchema, v.data, paths[i] as string) as PoolRecord)));
      return { pools, version: root?.version ?? 0 };
    });
  }

  async getPool(id: string): Promise<PoolRecord | undefined> {
    const v = await guarded(() => this.kv.get(poolPath(id)));
    return v ? (decode(PoolSchema, v.data, poolPath(id)) as PoolRecord) : undefined;
  }

  /**
   * Add a pool if /pools is still at `expectedVersion` (nobody added or removed
   * a pool since the caller checked for overlaps). False if that changed: the
   * caller re-reads and re-checks.
   */
  async createPool(rec: PoolRecord, expectedVersion: number): Promise<boolean> {
    try {
      await guarded(() =>
        this.kv.commit([
          { type: 'set', path: POOLS, data: '', version: expectedVersion },
          { type: 'create', path: poolPath(rec.id), data: json(rec) },
        ]),
      );
      return true;
    } catch (e) {
      if (e instanceof KvConflict) return false;
      throw e;
    }
  }

  async getPoolVersioned(id: string): Promise<{ value: PoolRecord; version: number } | undefined> {
    const v = await guarded(() => this.kv.get(poolPath(id)));
    return v ? { value: decode(PoolSchema, v.data, poolPath(id)) as PoolRecord, version: v.version } : undefined;
  }

  /** Compare-and-set of a pool record; false if it changed since `version`. */
  async setPool(rec: PoolRecord, version: number): Promise<boolean> {
    try {
      await guarded(() => this.kv.commit([{ type: 'set', path: poolPath(rec.id), data: json(rec), version }]));
      return true;
    } catch (e) {
      if (e instanceof KvConflict) return false;
      throw e;
    }
  }

  /** Remove a pool and every address claimed in it. False if it was not stored. */
  async deletePool(id: string): Promise<boolean> {
    const exists = await guarded(() => this.kv.get(poolPath(id)));
    if (!exists) return false;
    const ips = await guarded(() => this.kv.children(poolPath(id)));
    await this.commitIdempotent([
      ...ips.map((ip): KvOp => ({ type: 'delete', path: addressPath(id, ip), version: -1 })),
      { type: 'delete', path: poolPath(id), version: -1 },
      { type: 'set', path: POOLS, data: '', version: -1 },
    ]);
    return true;
  }

  /** Bare IPs claimed in a pool. */
  async claimedAddresses(poolId: string): Promise<string[]> {
    return guarded(() => this.kv.children(poolPath(poolId)));
  }

  async getAddress(poolId: string, ip: string): Promise<AddressRecord | undefined> {
    const v = await guarded(() => this.kv.get(addressPath(poolId, ip)));
    return v ? (decode(AddressSchema, v.data, addressPath(poolId, ip)) as AddressRecord) : undefined;
  }

  /** Claim an address; false if it is already taken. */
  async claimAddress(poolId: string, rec: AddressRecord): Promise<boolean> {
    try {
      await guarded(() => this.kv.commit([{ type: 'create', path: addressPath(poolId, rec.ip), data: json(rec) }]));
      return true;
    } catch (e) {
      if (e instanceof KvConflict && e.reason === 'exists') return false;
      if (e instanceof KvConflict && e.reason === 'missing') {
        throw new TsoverlayError('POOL_NOT_FOUND', `address pool ${poolId} does not exist (was it released?)`);
      }
      throw e;
    }
  }

  /** Release an address; false if it was not claimed. */
  async releaseAddress(poolId: string, ip: string): Promise<boolean> {
    try {
      await guarded(() => this.kv.commit([{ type: 'delete', path: addressPath(poolId, ip), version: -1 }]));
      return true;
    } catch (e) {
      if (e instanceof KvConflict && e.reason === 'missing') return false;
      throw e;
    }
  }

  // ---- nodes --------------------------------------------------------------

  /** Register this node as alive (an ephemeral node); KvConflict 'exists' if taken. */
  async registerNode(rec: NodeRecord): Promise<void> {
    await guarded(() => this.kv.createEphemeral(nodePath(rec.node), json(rec)));
  }

  /** Who holds a node name: undefined, this session, or another live session. */
  async nodeHolder(node: string): Promise<{ rec: NodeRecord; mine: boolean } | undefined> {
    const o = await guarded(() => this.kv.getOwner(nodePath(node)));
    if (!o) return undefined;
    return { rec: decode(NodeSchema, o.data, nodePath(node)) as NodeRecord, mine: o.ephemeralOwner === this.kv.sessionId() };
  }

  async listNodes(): Promise<NodeRecord[]> {
    const names = await guarded(() => this.kv.children('/nodes'));
    const paths = names.map((n) => nodePath(n));
    return (await this.readAll(NodeSchema, paths)) as NodeRecord[];
  }

  // ---- endpoints ----------------------------------------------------------

  async getEndpoint(networkId: string, endpointId: string): Promise<EndpointRecord | undefined> {
    const p = endpointPath(networkId, endpointId);
    const v = await guarded(() => this.kv.get(p));
    return v ? (this.decodeOnce(EndpointSchema, v, p) as EndpointRecord) : undefined;
  }

  async listEndpoints(networkId: string): Promise<EndpointRecord[]> {
    const ids = await guarded(() => this.kv.children(endpointsDir(networkId)));
    const paths = ids.map((id) => endpointPath(networkId, id));
    return (await this.readAll(EndpointSchema, paths)) as EndpointRecord[];
  }

  /** Store a new endpoint. Succeeds without change if the same record exists. */
  async createEndpoint(rec: EndpointRecord): Promise<void> {
    try {
      await guarded(() => this.kv.commit([{ type: 'create', path: endpointPath(rec.networkId, rec.id), data: json(rec) }]));
    } catch (e) {
      if (!(e instanceof KvConflict)) throw e;
      if (e.reason === 'missing') {
        throw new TsoverlayError('NETWORK_NOT_FOUND', `network ${rec.networkId.slice(0, 12)} is not known to tsoverlay`);
      }
      const existing = await this.getEndpoint(rec.networkId, rec.id);
      // A replay (Docker retried): the same endpoint, perhaps joined since.
      if (existing && json({ ...existing, sandboxKey: undefined }) === json({ ...rec, sandboxKey: undefined })) return;
      throw new TsoverlayError('STORE_CONFLICT', `endpoint ${rec.id.slice(0, 12)} already exists with other settings`);
    }
  }

  /** Remove an endpoint and its published names. False if it was not stored. */
  async deleteEndpoint(networkId: string, endpointId: string): Promise<boolean> {
    const existed = (await guarded(() => this.kv.get(endpointPath(networkId, endpointId)))) !== undefined;
    const named = (await guarded(() => this.kv.get(dnsNamePath(networkId, endpointId)))) !== undefined;
    const ops: KvOp[] = [
      ...(existed ? [{ type: 'delete', path: endpointPath(networkId, endpointId), version: -1 } as KvOp] : []),
      ...(named ? [{ type: 'delete', path: dnsNamePath(networkId, endpointId), version: -1 } as KvOp] : []),
    ];
    if (ops.length > 0) await this.commitIdempotent(ops);
    return existed;
  }

  /** Record the sandbox an endpoint joined (last writer wins: only its owner writes it). */
  async setEndpointSandbox(networkId: string, endpointId: string, sandboxKey: string): Promise<void> {
    const p = endpointPath(networkId, endpointId);
    const v = await guarded(() => this.kv.get(p));
    if (!v) return;
    const ep = decode(EndpointSchema, v.data, p) as EndpointRecord;
    if (ep.sandboxKey === sandboxKey) return;
    try {
      await guarded(() => this.kv.commit([{ type: 'set', path: p, data: json({ ...ep, sandboxKey }), version: v.version }]));
    } catch (e) {
      if (!(e instanceof KvConflict)) throw e; // removed or changed meanwhile: nothing to record
    }
  }

  // ---- published names (resolver) -----------------------------------------

  /** Create or replace the names of an endpoint; false if the endpoint (or its network) is gone. */
  async putDnsName(rec: DnsNameRecord): Promise<boolean> {
    const p = dnsNamePath(rec.network, rec.endpointId);
    for (let attempt = 0; attempt < 5; attempt++) {
      const cur = await guarded(() => this.kv.get(p));
      if (cur?.data === json(rec)) return true;
      // Replace = delete + create, so watchers of the folder see the change.
      const ops: KvOp[] = [
        // Only while the endpoint exists: a late publish must not outlive it.
        { type: 'check', path: endpointPath(rec.network, rec.endpointId), version: -1 },
        ...(cur ? [{ type: 'delete', path: p, version: cur.version } as KvOp] : []),
        { type: 'create', path: p, data: json(rec) },
      ];
      try {
        await guarded(() => this.kv.commit(ops));
        return true;
      } catch (e) {
        if (!(e instanceof KvConflict)) throw e;
        if (e.reason === 'missing' && (e.op.type === 'create' || e.op.type === 'check')) return false;
      }
    }
    throw new TsoverlayError('STORE_CONFLICT', `names of endpoint ${rec.endpointId.slice(0, 12)} kept changing`);
  }

  async getDnsName(networkId: string, endpointId: string): Promise<DnsNameRecord | undefined> {
    const p = dnsNamePath(networkId, endpointId);
    const v = await guarded(() => this.kv.get(p));
    return v ? (this.decodeOnce(DnsNameSchema, v, p) as DnsNameRecord) : undefined;
  }

  async listDnsNames(networkId: string): Promise<DnsNameRecord[]> {
    const ids = await guarded(() => this.kv.children(dnsNamesDir(networkId)));
    const paths = ids.map((id) => dnsNamePath(networkId, id));
    return (await this.readAll(DnsNameSchema, paths)) as DnsNameRecord[];
  }

  /**
   * Commit a batch of unconditional deletes; if a concurrent delete removed
   * some node first, retry without it (deletes are idempotent).
   */
  private async commitIdempotent(ops: KvOp[]): Promise<void> {
    let pending = ops;
    for (let attempt = 0; attempt < 5 && pending.length > 0; attempt++) {
      try {
        await guarded(() => this.kv.commit(pending));
        return;
      } catch (e) {
        if (!(e instanceof KvConflict) || e.reason !== 'missing' || e.op.type !== 'delete') throw e;
        const gone = e.op;
        pending = pending.filter((op) => op !== gone);
      }
    }
    if (pending.length > 0) throw new TsoverlayError('STORE_CONFLICT', 'store kept changing during a delete; try again');
  }
}
