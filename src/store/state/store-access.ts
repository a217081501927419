/**
 * What every record family of ClusterState shares: the KvStore, the mapping
 * of an unreachable store to STORE_UNAVAILABLE, decoding a stored value once
 * (frozen, shared by every reader), batched reads, and idempotent deletes.
 */
import { TsoverlayError } from '../../errors.js';
import type { Schema } from '../../util/schema.js';
import { KvConflict, KvUnavailable, getMany, type KvOp, type KvStore, type Versioned } from '../kv-store.js';
import { decode } from '../records.js';

export const json = (v: unknown): string => JSON.stringify(v);

export const present = <T>(values: ReadonlyArray<T | undefined>): T[] => values.filter((v): v is T => v !== undefined);

/** Run a store call, mapping an unreachable store to STORE_UNAVAILABLE. */
export const guarded = async <T>(fn: () => Promise<T>): Promise<T> => {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof KvUnavailable) {
      throw new TsoverlayError('STORE_UNAVAILABLE', 'cluster store unavailable; try again when ZooKeeper is reachable', { cause: e });
    }
    throw e;
  }
};

/** Freeze a decoded record and everything in it: cached records are shared by every reader. */
const deepFreeze = <T>(v: T): T => {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
};

export class StoreAccess {
  /**
   * Decoded records by the stored value they came from: the read cache hands
   * out the same object until the entry changes, so each is decoded once.
   */
  private readonly decoded = new WeakMap<Versioned, unknown>();

  constructor(readonly kv: KvStore) {}

  decodeOnce<T>(schema: Schema<T>, v: Versioned, where: string): T {
    const hit = this.decoded.get(v);
    if (hit !== undefined) return hit as T;
    const value = deepFreeze(decode(schema, v.data, where));
    this.decoded.set(v, value);
    return value;
  }

  /** The records at `paths` that exist, read in one batch and decoded once each. */
  async readAll<T>(schema: Schema<T>, paths: readonly string[]): Promise<T[]> {
    const values = await guarded(() => getMany(this.kv, paths));
    return present(values.map((v, i) => v && this.decodeOnce(schema, v, paths[i] as string)));
  }

  /**
   * Commit a batch of unconditional deletes; if a concurrent delete removed
   * some node first, retry without it (deletes are idempotent).
   */
  async commitIdempotent(ops: KvOp[]): Promise<void> {
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
