/**
 * A read cache in front of a KvStore, kept valid by the store's own watches.
 *
 * The reconcile loop, the name index and the driver read every network and
 * endpoint after each change anywhere in the cluster; with thousands of
 * endpoints that is thousands of ZooKeeper round trips per change. This
 * decorator answers those reads from memory:
 *
 * - a *watched* path (a directory's child list, or a record that other nodes
 *   may change) is cached from the moment a watch on it is armed until the
 *   watch fires; the next read re-arms the watch and reads again;
 * - a *stable* record (one that nobody but its writer changes after creating
 *   it, and whose writer goes through this cache) is cached without a watch
 *   of its own and dropped when a fresh read of its (watched) directory no
 *   longer lists it;
 * - every commit through this store drops the paths it touched and their
 *   parents' child lists, so a node always reads its own writes;
 * - a session event (disconnect, expiry, reconnect) drops everything.
 *
 * Anything the policy does not name goes straight to the inner store.
 */
import type { EphemeralOwner, KvOp, KvStore, SessionEvent, Versioned } from './kv-store.js';
import { parentOf, pipelinedGets } from './kv-store.js';

export interface CachePolicy {
  /** Directories whose child lists are cached (with a watch on the directory). */
  watchedDir(path: string): boolean;
  /** Records cached with a watch of their own. */
  watchedRecord(path: string): boolean;
  /** Records cached without a watch: changed only by their writer, through this cache. */
  stableRecord(path: string): boolean;
}

export class CachedKvStore implements KvStore {
  private readonly records = new Map<string, Versioned>();
  /** Cached stable records by directory. */
  private readonly stableByDir = new Map<string, Set<string>>();
  private readonly dirs = new Map<string, string[]>();
  /** Bumped whenever a path is invalidated: a read that started before does not fill the cache. */
  private readonly generation = new Map<string, number>();
  private readonly armed = new Map<string, () => void>();
  private globalGeneration = 0;
  private readonly offSession: () => void;

  constructor(
    private readonly inner: KvStore,
    private readonly policy: CachePolicy,
  ) {
    this.offSession = inner.onSession(() => this.clear());
  }

  /** How many entries are cached (for tests and metrics). */
  get size(): { records: number; dirs: number; watches: number } {
    return { records: this.records.size, dirs: this.dirs.size, watches: this.armed.size };
  }

  async get(path: string): Promise<Versioned | undefined> {
    const watched = this.policy.watchedRecord(path);
    if (!watched && !this.policy.stableRecord(path)) return this.inner.get(path);
    const hit = this.records.get(path);
    if (hit) return hit;
    if (watched) this.arm(path);
    const stamp = this.stamp(path);
    const v = await this.inner.get(path);
    if (v && this.stamp(path) === stamp) {
      this.records.set(path, v);
      if (!watched) this.stableIn(parentOf(path)).add(path);
    } else if (!v) {
      this.disarm(path); // gone: nothing to keep watching
    }
    return v;
  }

  /** Cached entries answer at once; only the misses go to the store, together. */
  async getMany(paths: readonly string[]): Promise<Array<Versioned | undefined>> {
    const out = new Array<Versioned | undefined>(paths.length);
    const missing: number[] = [];
    paths.forEach((p, i) => {
      const hit = this.records.get(p);
      if (hit) out[i] = hit;
      else missing.push(i);
    });
    if (missing.length > 0) {
      const fetched = await pipelinedGets((p) => this.get(p), missing.map((i) => paths[i] as string));
      missing.forEach((i, k) => (out[i] = fetched[k]));
    }
    return out;
  }

  async children(path: string): Promise<string[]> {
    if (!this.policy.watchedDir(path)) return this.inner.children(path);
    const hit = this.dirs.get(path);
    if (hit) return [...hit];
    this.arm(path);
    const stamp = this.stamp(path);
    const names = await this.inner.children(path);
    if (this.stamp(path) === stamp) {
      this.dirs.set(path, names);
      this.dropStableRecordsMissingFrom(path, names);
    }
    return [...names];
  }

  async commit(ops: readonly KvOp[]): Promise<void> {
    try {
      await this.inner.commit(ops);
    } finally {
      // applied, refused or unknown (store unreachable): read again either way
      for (const op of ops) {
        this.invalidate(op.path);
        this.invalidate(parentOf(op.path));
      }
    }
  }

  createEphemeral(path: string, data: string): Promise<void> {
    return this.inner.createEphemeral(path, data).finally(() => {
      this.invalidate(path);
      this.invalidate(parentOf(path));
    });
  }

  getOwner(path: string): Promise<EphemeralOwner | undefined> {
    return this.inner.getOwner(path);
  }

  sessionId(): string {
    return this.inner.sessionId();
  }

  onSession(listener: (e: SessionEvent) => void): () => void {
    return this.inner.onSession(listener);
  }

  watch(path: string, listener: () => void): () => void {
    return this.inner.watch(path, listener);
  }

  async close(): Promise<void> {
    this.offSession();
    this.clear();
    await this.inner.close();
  }

  /** The cached stable records (to save at a clean stop). */
  stableRecords(): Array<[string, Versioned]> {
    const out: Array<[string, Versioned]> = [];
    for (const paths of this.stableByDir.values()) for (const p of paths) out.push([p, this.records.get(p) as Versioned]);
    return out;
  }

  /**
   * Start with stable records saved by an earlier process. Only paths the
   * policy calls stable are taken; a folder listing drops those that are gone.
   */
  seedStable(records: Iterable<[string, Versioned]>): number {
    let n = 0;
    for (const [path, v] of records) {
      if (!this.policy.stableRecord(path) || this.records.has(path)) continue;
      this.records.set(path, v);
      this.stableIn(parentOf(path)).add(path);
      n++;
    }
    return n;
  }

  /** Forget everything (e.g. before a full resync). */
  clear(): void {
    this.globalGeneration++;
    this.records.clear();
    this.stableByDir.clear();
    this.dirs.clear();
    for (const off of this.armed.values()) off();
    this.armed.clear();
  }

  private stamp(path: string): string {
    return `${this.globalGeneration}/${this.generation.get(path) ?? 0}`;
  }

  private invalidate(path: string): void {
    this.generation.set(path, (this.generation.get(path) ?? 0) + 1);
    if (this.records.delete(path)) this.stableByDir.get(parentOf(path))?.delete(path);
    this.dirs.delete(path);
  }

  private stableIn(dir: string): Set<string> {
    let set = this.stableByDir.get(dir);
    if (!set) this.stableByDir.set(dir, (set = new Set()));
    return set;
  }

  /** Watch `path` until its next change; that change drops it from the cache. */
  private arm(path: string): void {
    if (this.armed.has(path)) return;
    const off = this.inner.watch(path, () => {
      this.invalidate(path);
      this.disarm(path);
    });
    this.armed.set(path, off);
  }

  private disarm(path: string): void {
    const off = this.armed.get(path);
    if (!off) return;
    this.armed.delete(path);
    off();
  }

  private dropStableRecordsMissingFrom(dir: string, names: readonly string[]): void {
    const cached = this.stableByDir.get(dir);
    if (!cached) return;
    const present = new Set(names.map((n) => (dir === '/' ? `/${n}` : `${dir}/${n}`)));
    for (const path of cached) {
      if (present.has(path)) continue;
      cached.delete(path);
      this.records.delete(path);
    }
    if (cached.size === 0) this.stableByDir.delete(dir);
  }
}
