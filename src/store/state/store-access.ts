/**
 * What every record family of ClusterState shares: the KvStore, the mapping
 * of an unreachable store to STORE_UNAVAILABLE, decoding a stored value once
 * (frozen, shared by every reader), batched reads, and idempotent deletes.
 */
import { TsoverlayError, errorText, isTsoverlayError } from '../../errors.js';
import { type Log, silentLog } from '../../log.js';
import type { Schema } from '../../util/schema.js';
import { KvConflict, KvUnavailable, getMany, type KvOp, type KvStore, type Versioned } from '../kv-store.js';
import { decode } from '../records.js';

export const json = (v: unknown): string => JSON.stringify(v);

/** How often a write whose reply was lost is tried again, and how long each waits for the session. */
const WRITE_RETRIES = 3;
const RECONNECT_WAIT_MS = 3000;

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

/** A record that could not be decoded, as last seen. */
export interface BadRecord {
  path: string;
  version: number;
  reason: string;
}

export class StoreAccess {
  /**
   * Decoded records by the stored value they came from: the read cache hands
   * out the same object until the entry changes, so each is decoded once.
   */
  private readonly decoded = new WeakMap<Versioned, unknown>();
  /** Records skipped because they do not decode, by path (reported once per version). */
  private readonly bad = new Map<string, BadRecord>();
  /** How many times a list skipped a bad record (a counter for status and metrics). */
  skippedReads = 0;

  constructor(
    readonly kv: KvStore,
    private readonly log: Log = silentLog,
  ) {}

  /** The records skipped on the last reads that met them (newest report per path). */
  badRecords(): BadRecord[] {
    return [...this.bad.values()];
  }

  decodeOnce<T>(schema: Schema<T>, v: Versioned, where: string): T {
    const hit = this.decoded.get(v);
    if (hit !== undefined) return hit as T;
    const value = deepFreeze(decode(schema, v.data, where));
    this.decoded.set(v, value);
    return value;
  }

  /**
   * The records at `paths` that exist, read in one batch and decoded once
   * each. A record that does not decode (malformed, or written by a newer
   * version) is skipped and reported once per version: one bad record never
   * stops a pass or a start.
   */
  async readAll<T>(schema: Schema<T>, paths: readonly string[]): Promise<T[]> {
    return (await this.readEach(schema, paths)).records;
  }

  /** readAll, also naming the paths whose records were skipped, and each record's creation stamp (`created[i]` of `records[i]`). */
  async readEach<T>(schema: Schema<T>, paths: readonly string[]): Promise<{ records: T[]; created: number[]; skipped: string[] }> {
    const values = await guarded(() => getMany(this.kv, paths));
    const out: T[] = [];
    const created: number[] = [];
    const skipped: string[] = [];
    for (const [i, v] of values.entries()) {
      if (!v) continue;
      const path = paths[i] as string;
      try {
        out.push(this.decodeOnce(schema, v, path));
        created.push(v.created);
        if (this.bad.has(path)) {
          this.bad.delete(path);
          this.log.info({ path }, 'store record readable again');
        }
      } catch (e) {
        if (!isTsoverlayError(e, 'BAD_RECORD')) throw e;
        this.skipped(path, v.version, errorText(e), explainNewer(v.data));
        skipped.push(path);
      }
    }
    return { records: out, created, skipped };
  }

  private skipped(path: string, version: number, reason: string, newer: string | undefined): void {
    this.skippedReads++;
    const seen = this.bad.get(path);
    if (seen && seen.version === version) return;
    this.bad.set(path, { path, version, reason: newer ?? reason });
    if (newer) this.log.warn({ path, reason: newer }, `store record skipped: ${newer}; it is left untouched on this node`);
    else this.log.warn({ path, reason }, `store record skipped: ${reason}; the rest of the store is used`);
  }

  /**
   * Commit a write whose reply may be lost. On a connection loss (the write
   * may or may not have landed) it waits for the session to come back and
   * asks `landed()` whether the store already holds this very write (a claim
   * token); if not, it commits again. Other failures go to `failed`, whose
   * answer is the result. True once the write is in.
   */
  async writeOnce(ops: KvOp[], landed: () => Promise<boolean>, failed: (e: unknown) => boolean | Promise<boolean>): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        if (attempt > 0 && (await landed())) return true;
        await this.kv.commit(ops);
        return true;
      } catch (e) {
        const unavailable = e instanceof KvUnavailable || isTsoverlayError(e, 'STORE_UNAVAILABLE');
        if (unavailable && attempt < WRITE_RETRIES) {
          await this.sessionBack(RECONNECT_WAIT_MS);
          continue;
        }
        if (unavailable) return guarded(() => Promise.reject(e));
        return failed(e);
      }
    }
  }

  /** Resolve on the next session event (reconnected, or a new session), or after `ms`. */
  private sessionBack(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        off();
        resolve();
      };
      const timer = setTimeout(done, ms);
      const off = this.kv.onSession((e) => {
        if (e === 'reconnected' || e === 'connected') done();
      });
    });
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

/** Layouts this version knows (the `mode`/`layout` values of a network record). */
const KNOWN_LAYOUTS = new Set(['macvlan', 'bridge']);

/**
 * A plain reason when a record is from a newer version: a network whose
 * layout this version does not know. Undefined when that is not the case.
 */
const explainNewer = (text: string): string | undefined => {
  try {
    const v: unknown = JSON.parse(text);
    if (!v || typeof v !== 'object') return undefined;
    const r = v as Record<string, unknown>;
    for (const field of ['layout', 'mode']) {
      const layout = r[field];
      if (typeof layout === 'string' && !KNOWN_LAYOUTS.has(layout)) {
        return `network ${typeof r['id'] === 'string' ? r['id'] : '?'} has the layout "${layout}", which this version does not know (written by a newer tsoverlay?)`;
      }
    }
  } catch {
    // not JSON: the decode error says so
  }
  return undefined;
};
