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
import type { AddressRecord, EndpointRecord, NetworkRecord, PoolRecord } from '../model.js';
import { KvConflict, KvUnavailable, type KvOp, type KvStore } from './kv-store.js';
import {
  POOLS,
  ROOT_DIRS,
  addressPath,
  endpointPath,
  endpointsDir,
  networkPath,
  poolPath,
  vniPath,
} from './paths.js';
import { AddressSchema, EndpointSchema, NetworkSchema, PoolSchema, decode } from './records.js';

const json = (v: unknown): string => JSON.stringify(v);

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

export class ClusterState {
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

  watch(path: string, listener: () => void): () => void {
    return this.kv.watch(path, listener);
  }

  // ---- networks ---------------------------------------------------------

  async getNetwork(id: string): Promise<NetworkRecord | undefined> {
    const v = await guarded(() => this.kv.get(networkPath(id)));
    return v ? (decode(NetworkSchema, v.data, networkPath(id)) as NetworkRecord) : undefined;
  }

  async listNetworks(): Promise<NetworkRecord[]> {
    const ids = await guarded(() => this.kv.children('/networks'));
    const out: NetworkRecord[] = [];
    for (const id of ids) {
      const n = await this.getNetwork(id);
      if (n) out.push(n);
    }
    return out;
  }

  async usedVnis(): Promise<Set<number>> {
    const names = await guarded(() => this.kv.children('/vnis'));
    return new Set(names.map(Number).filter(Number.isInteger));
  }

  /**
   * Store a network and claim its VNI in one commit. Throws VNI_IN_USE if
   * another network holds the VNI; succeeds without change if this exact
   * network is already stored (a replayed create).
   */
  async createNetwork(rec: NetworkRecord): Promise<void> {
    const ops: KvOp[] = [
      { type: 'create', path: vniPath(rec.vni), data: rec.id },
      { type: 'create', path: networkPath(rec.id), data: json(rec) },
      { type: 'create', path: endpointsDir(rec.id), data: '' },
    ];
    try {
      await guarded(() => this.kv.commit(ops));
    } catch (e) {
      if (!(e instanceof KvConflict)) throw e;
      const existing = await this.getNetwork(rec.id);
      if (existing && existing.vni === rec.vni) return;
      if (existing) {
        throw new TsoverlayError('STORE_CONFLICT', `network ${rec.id.slice(0, 12)} already exists with VNI ${existing.vni}`);
      }
      if (e.op.path === vniPath(rec.vni)) {
        throw new TsoverlayError('VNI_IN_USE', `VNI ${rec.vni} is already used by another tsoverlay network`);
      }
      throw new TsoverlayError('STORE_CONFLICT', `could not store network ${rec.id.slice(0, 12)}: ${e.message}`, { cause: e });
    }
  }

  /** Remove a network, its endpoints and its VNI claim. False if it was not stored. */
  async deleteNetwork(id: string): Promise<boolean> {
    const net = await this.getNetwork(id);
    const eps = await guarded(() => this.kv.children(endpointsDir(id)));
    const ops: KvOp[] = eps.map((e) => ({ type: 'delete', path: endpointPath(id, e), version: -1 }));
    if (await guarded(() => this.kv.get(endpointsDir(id)))) ops.push({ type: 'delete', path: endpointsDir(id), version: -1 });
    if (net) {
      ops.push({ type: 'delete', path: networkPath(id), version: -1 });
      const owner = await guarded(() => this.kv.get(vniPath(net.vni)));
      if (owner?.data === id) ops.push({ type: 'delete', path: vniPath(net.vni), version: owner.version });
    }
    if (ops.length === 0) return false;
    await this.commitIdempotent(ops);
    return net !== undefined;
  }

  // ---- pools and addresses ----------------------------------------------

  async listPools(): Promise<PoolSet> {
    return guarded(async () => {
      const root = await this.kv.get(POOLS);
      const ids = await this.kv.children(POOLS);
      const pools: PoolRecord[] = [];
      for (const id of ids) {
        const p = await this.getPool(id);
        if (p) pools.push(p);
      }
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

  // ---- endpoints ----------------------------------------------------------

  async getEndpoint(networkId: string, endpointId: string): Promise<EndpointRecord | undefined> {
    const p = endpointPath(networkId, endpointId);
    const v = await guarded(() => this.kv.get(p));
    return v ? (decode(EndpointSchema, v.data, p) as EndpointRecord) : undefined;
  }

  async listEndpoints(networkId: string): Promise<EndpointRecord[]> {
    const ids = await guarded(() => this.kv.children(endpointsDir(networkId)));
    const out: EndpointRecord[] = [];
    for (const id of ids) {
      const ep = await this.getEndpoint(networkId, id);
      if (ep) out.push(ep);
    }
    return out;
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
      if (existing && json(existing) === json(rec)) return;
      throw new TsoverlayError('STORE_CONFLICT', `endpoint ${rec.id.slice(0, 12)} already exists with other settings`);
    }
  }

  async deleteEndpoint(networkId: string, endpointId: string): Promise<boolean> {
    try {
      await guarded(() => this.kv.commit([{ type: 'delete', path: endpointPath(networkId, endpointId), version: -1 }]));
      return true;
    } catch (e) {
      if (e instanceof KvConflict && e.reason === 'missing') return false;
      throw e;
    }
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
