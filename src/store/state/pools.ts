/**
 * Pool and address records of ClusterState: /pools, /pools/<poolId> and the
 * claimed addresses /pools/<poolId>/<ip>.
 * - A pool is added with a versioned write of /pools, so a concurrent pool
 *   that overlaps makes one of the two commits fail and re-check.
 * - An address is claimed by creating /pools/<pool>/<ip>: taken once.
 */
import { randomUUID } from 'node:crypto';
import { TsoverlayError } from '../../errors.js';
import { type AddressRecord, type PoolRecord, asPoolId } from '../../model.js';
import { KvConflict, type KvOp } from '../kv-store.js';
import { POOLS, addressPath, poolPath } from '../paths.js';
import { AddressSchema, PoolSchema, decode } from '../records.js';
import { parseCidr } from '../../net/ip.js';
import { type StoreAccess, guarded, json } from './store-access.js';

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
      const { records, skipped } = await this.s.readEach(PoolSchema, ids.map((id) => poolPath(id)));
      // An unreadable pool still holds its subnet (the id names it): it stays
      // in the list as a placeholder, so no new pool can overlap it.
      const held = skipped.flatMap((path) => placeholderOf(path.slice(POOLS.length + 1)) ?? []);
      return { pools: [...(records as PoolRecord[]), ...held], version: root?.version ?? 0 };
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
    const mine: PoolRecord = { ...rec, claim: rec.claim ?? randomUUID() };
    const ops: KvOp[] = [
      { type: 'set', path: POOLS, data: '', version: expectedVersion },
      { type: 'create', path: poolPath(rec.id), data: json(mine) },
    ];
    return this.s.writeOnce(ops, async () => (await this.getPoolClaim(rec.id)) === mine.claim, (e) => {
      if (e instanceof KvConflict) return false;
      throw e;
    });
  }

  /** The claim token of a stored pool, whether or not the rest of it decodes. */
  private async getPoolClaim(id: string): Promise<string | undefined> {
    const v = await guarded(() => this.s.kv.get(poolPath(id)));
    return v ? claimOf(v.data) : undefined;
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

  /**
   * Claim an address; false if it is already taken. The claim carries a token
   * of this request, so when the reply to the create is lost and the write
   * did land, the retry finds its own claim and succeeds (the address is held
   * once); a claim by anyone else stays a conflict.
   */
  async claimAddress(poolId: string, rec: AddressRecord): Promise<boolean> {
    const mine: AddressRecord = { ...rec, claim: rec.claim ?? randomUUID() };
    const path = addressPath(poolId, rec.ip);
    const ours = async (): Promise<boolean> => {
      const v = await guarded(() => this.s.kv.get(path));
      return v !== undefined && claimOf(v.data) === mine.claim;
    };
    return this.s.writeOnce([{ type: 'create', path, data: json(mine) }], ours, async (e) => {
      if (e instanceof KvConflict && e.reason === 'exists') return ours();
      if (e instanceof KvConflict && e.reason === 'missing') {
        throw new TsoverlayError('POOL_NOT_FOUND', `address pool ${poolId} does not exist (was it released?)`);
      }
      throw e;
    });
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

/**
 * The pool an unreadable record at /pools/<id> stands for, from its id
 * ("<space>:<subnet with _ for />", cluster/keys.ts): its space and subnet,
 * no users of its own that anyone may remove. Undefined if the id is not one.
 */
const placeholderOf = (id: string): PoolRecord | undefined => {
  const at = id.indexOf(':');
  const space = id.slice(0, at);
  const cidr = parseCidr(id.slice(at + 1).replace('_', '/'));
  if (at < 0 || !cidr || (space !== 'tsoverlay-local' && space !== 'tsoverlay-global')) return undefined;
  return { id: asPoolId(id), space, family: cidr.family, pool: id.slice(at + 1).replace('_', '/'), requested: true, users: ['(unreadable record)'], options: {}, createdAt: '' };
};

/** The `claim` field of a stored record's JSON, if any. */
const claimOf = (text: string): string | undefined => {
  try {
    const v: unknown = JSON.parse(text);
    const c = v && typeof v === 'object' ? (v as { claim?: unknown }).claim : undefined;
    return typeof c === 'string' ? c : undefined;
  } catch {
    return undefined;
  }
};
