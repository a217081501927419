/**
 * Pool and address records of ClusterState: /pools, /pools/<poolId> and the
 * claimed addresses /pools/<poolId>/<ip>.
 * - A pool is added with a versioned write of /pools, so a concurrent pool
 *   that overlaps makes one of the two commits fail and re-check.
 * - An address is claimed by creating /pools/<pool>/<ip>: taken once.
 */
import { TsoverlayError } from '../../errors.js';
import type { AddressRecord, PoolRecord } from '../../model.js';
import { KvConflict, getMany, type KvOp } from '../kv-store.js';
import { POOLS, addressPath, poolPath } from '../paths.js';
import { AddressSchema, PoolSchema, decode } from '../records.js';
import { type StoreAccess, guarded, json, present } from './store-access.js';

export interface PoolSet {
  pools: PoolRecord[];
  /** Version of /pools: pass it to createPool for the compare-and-set. */
  version: number;
}

export class PoolState {
  constructor(private readonly s: StoreAccess) {}

  async listPools(): Promise<PoolSet> {
    return guarded(async () => {
      const root = await this.s.kv.get(POOLS);
      const ids = await this.s.kv.children(POOLS);
      const paths = ids.map((id) => poolPath(id));
      const values = await getMany(this.s.kv, paths);
      const pools = present(values.map((v, i) => v && (decode(PoolSchema, v.data, paths[i] as string) as PoolRecord)));
      return { pools, version: root?.version ?? 0 };
    });
  }

  async getPool(id: string): Promise<PoolRecord | undefined> {
    const v = await guarded(() => this.s.kv.get(poolPath(id)));
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
        this.s.kv.commit([
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
    const v = await guarded(() => this.s.kv.get(poolPath(id)));
    return v ? { value: decode(PoolSchema, v.data, poolPath(id)) as PoolRecord, version: v.version } : undefined;
  }

  /** Compare-and-set of a pool record; false if it changed since `version`. */
  async setPool(rec: PoolRecord, version: number): Promise<boolean> {
    try {
      await guarded(() => this.s.kv.commit([{ type: 'set', path: poolPath(rec.id), data: json(rec), version }]));
      return true;
    } catch (e) {
      if (e instanceof KvConflict) return false;
      throw e;
    }
  }

  /** Remove a pool and every address claimed in it. False if it was not stored. */
  async deletePool(id: string): Promise<boolean> {
    const exists = await guarded(() => this.s.kv.get(poolPath(id)));
    if (!exists) return false;
    const ips = await guarded(() => this.s.kv.children(poolPath(id)));
    await this.s.commitIdempotent([
      ...ips.map((ip): KvOp => ({ type: 'delete', path: addressPath(id, ip), version: -1 })),
      { type: 'delete', path: poolPath(id), version: -1 },
      { type: 'set', path: POOLS, data: '', version: -1 },
    ]);
    return true;
  }

  /** Bare IPs claimed in a pool. */
  async claimedAddresses(poolId: string): Promise<string[]> {
    return guarded(() => this.s.kv.children(poolPath(poolId)));
  }

  async getAddress(poolId: string, ip: string): Promise<AddressRecord | undefined> {
    const v = await guarded(() => this.s.kv.get(addressPath(poolId, ip)));
    return v ? (decode(AddressSchema, v.data, addressPath(poolId, ip)) as AddressRecord) : undefined;
  }

  /** Claim an address; false if it is already taken. */
  async claimAddress(poolId: string, rec: AddressRecord): Promise<boolean> {
    try {
      await guarded(() => this.s.kv.commit([{ type: 'create', path: addressPath(poolId, rec.ip), data: json(rec) }]));
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
      await guarded(() => this.s.kv.commit([{ type: 'delete', path: addressPath(poolId, ip), version: -1 }]));
      return true;
    } catch (e) {
      if (e instanceof KvConflict && e.reason === 'missing') return false;
      throw e;
    }
  }
}
