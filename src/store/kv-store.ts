/**
 * The store port: a small hierarchical key-value store with per-node versions,
 * atomic multi-operation commits and watches — the shape of ZooKeeper, so the
 * ZooKeeper adapter is a thin mapping and the embedded store behaves the same.
 *
 * Semantics (the contract tests in test/contract/kv-store.test.ts pin them):
 * - Paths are absolute, '/'-separated, without a trailing slash; '/' is the root.
 * - `create` fails if the node exists or its parent does not.
 * - `set`/`delete`/`check` with `version >= 0` fail unless the node's version
 *   matches; version -1 matches any. `delete` fails if the node has children.
 * - A commit applies all operations or none; every `set` bumps the version.
 * - Every read carries the node's creation stamp (`created`), larger for a
 *   node created later anywhere in the store.
 * - Watches fire (asynchronously, at least once) after a change of the node's
 *   data or its set of children; listeners stay registered until unsubscribed.
 */
export interface Versioned {
  data: string;
  version: number;
  /**
   * When the node was created, as a stamp that only grows across the store
   * (ZooKeeper: its czxid; embedded stores: a counter). A node deleted and
   * created again gets a larger one; `set` leaves it alone. It orders records
   * by age (newest wins, src/reconcile/duplicates.ts).
   */
  created: number;
}

export type KvOp =
  | { type: 'create'; path: string; data: string }
  | { type: 'set'; path: string; data: string; version: number }
  | { type: 'delete'; path: string; version: number }
  | { type: 'check'; path: string; version: number };

export type KvConflictReason = 'exists' | 'missing' | 'version' | 'not-empty';

/** A commit was refused because the store is not in the expected state. Nothing was applied. */
export class KvConflict extends Error {
  override readonly name = 'KvConflict';
  constructor(
    readonly op: KvOp,
    readonly reason: KvConflictReason,
  ) {
    super(`${op.type} ${op.path}: ${reason}`);
  }
}

/** The store cannot be reached; the operation may or may not have been applied. */
export class KvUnavailable extends Error {
  override readonly name = 'KvUnavailable';
}

export type SessionEvent = 'connected' | 'disconnected' | 'expired' | 'reconnected';

export interface EphemeralOwner extends Versioned {
  /** Session that owns the ephemeral node ('' for a persistent node). */
  ephemeralOwner: string;
  /** When the node was created (ms since the epoch), where the store keeps it (ZooKeeper's ctime). */
  createdMs?: number;
}

export interface KvStore {
  get(path: string): Promise<Versioned | undefined>;
  /**
   * Create a node that lives as long as this store's session (ZooKeeper:
   * an ephemeral znode; embedded stores: until close()). KvConflict 'exists'
   * if the node is there.
   */
  createEphemeral(path: string, data: string): Promise<void>;
  /** A node with the session owning it, to tell "mine" from "another live node's". */
  getOwner(path: string): Promise<EphemeralOwner | undefined>;
  /** This store's current session id (hex; constant for embedded stores). */
  sessionId(): string;
  /** Session changes; embedded stores never emit. Returns unsubscribe. */
  onSession(listener: (e: SessionEvent) => void): () => void;
  /**
   * Several gets at once, results in the order of `paths` (optional: see
   * getMany() below for stores without it).
   */
  getMany?(paths: readonly string[]): Promise<Array<Versioned | undefined>>;
  /** Child names (not paths), sorted; [] if the node does not exist. */
  children(path: string): Promise<string[]>;
  commit(ops: readonly KvOp[]): Promise<void>;
  /** Call `listener` after changes of `path` or its children; returns unsubscribe. */
  watch(path: string, listener: () => void): () => void;
  close(): Promise<void>;
}

export const parentOf = (path: string): string => {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
};

export const joinPath = (...parts: string[]): string => {
  for (const p of parts) {
    if (p === '' || p.includes('/') || p === '.' || p === '..') throw new Error(`invalid path segment "${p}"`);
  }
  return `/${parts.join('/')}`;
};

/** Gets in flight at once when a store has no getMany of its own. */
const GET_MANY_CONCURRENCY = 64;

/** Single gets with up to GET_MANY_CONCURRENCY in flight, results in the order of `paths`. */
export const pipelinedGets = async (
  get: (path: string) => Promise<Versioned | undefined>,
  paths: readonly string[],
): Promise<Array<Versioned | undefined>> => {
  const out = new Array<Versioned | undefined>(paths.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < paths.length) {
      const i = next++;
      out[i] = await get(paths[i] as string);
    }
  };
  await Promise.all(Array.from({ length: Math.min(GET_MANY_CONCURRENCY, paths.length) }, worker));
  return out;
};

/** Many gets: the store's own getMany, or pipelined single gets. */
export const getMany = (kv: KvStore, paths: readonly string[]): Promise<Array<Versioned | undefined>> =>
  kv.getMany ? kv.getMany(paths) : pipelinedGets((p) => kv.get(p), paths);
