/**
 * In-memory KvStore with ZooKeeper semantics. Used directly in tests and as the
 * engine of the embedded file-backed store. Single-process: a commit is a
 * synchronous check-then-apply, so it is atomic with respect to other calls.
 */
import { type EphemeralOwner, KvConflict, type KvOp, type KvStore, type SessionEvent, type Versioned, parentOf } from './kv-store.js';

const SESSION = 'local';

export interface MemoryNode {
  data: string;
  version: number;
  /** Creation stamp: one more than the largest in the store when created (ZooKeeper's czxid, in small). */
  created: number;
}

export class MemoryKvStore implements KvStore {
  protected readonly nodes = new Map<string, MemoryNode>([['/', { data: '', version: 0, created: 0 }]]);
  /** The last creation stamp handed out. */
  private lastCreated = 0;
  private readonly watchers = new Map<string, Set<() => void>>();
  private closed = false;
  /** Ephemeral nodes live until close() and are never persisted. */
  private readonly ephemerals = new Set<string>();

  constructor(initial?: Iterable<[string, MemoryNode]>) {
    if (initial) for (const [k, v] of initial) this.nodes.set(k, { ...v });
    for (const n of this.nodes.values()) this.lastCreated = Math.max(this.lastCreated, n.created);
  }

  async get(path: string): Promise<Versioned | undefined> {
    this.assertOpen();
    const n = this.nodes.get(path);
    return n ? { data: n.data, version: n.version, created: n.created } : undefined;
  }

  async children(path: string): Promise<string[]> {
    this.assertOpen();
    return this.childNames(path);
  }

  async commit(ops: readonly KvOp[]): Promise<void> {
    this.assertOpen();
    this.apply(ops);
    await this.persist();
  }

  async createEphemeral(path: string, data: string): Promise<void> {
    this.assertOpen();
    this.apply([{ type: 'create', path, data }]);
    this.ephemerals.add(path);
  }

  async getOwner(path: string): Promise<EphemeralOwner | undefined> {
    const n = this.nodes.get(path);
    return n ? { data: n.data, version: n.version, created: n.created, ephemeralOwner: this.ephemerals.has(path) ? SESSION : '' } : undefined;
  }

  sessionId(): string {
    return SESSION;
  }

  onSession(_listener: (e: SessionEvent) => void): () => void {
    return () => undefined;
  }

  watch(path: string, listener: () => void): () => void {
    let set = this.watchers.get(path);
    if (!set) this.watchers.set(path, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  async close(): Promise<void> {
    for (const p of [...this.ephemerals].reverse()) this.nodes.delete(p);
    this.ephemerals.clear();
    this.closed = true;
    this.watchers.clear();
  }

  /** Snapshot of every node, for persistence and tests. */
  snapshot(): Array<[string, MemoryNode]> {
    return [...this.nodes.entries()].filter(([k]) => !this.ephemerals.has(k)).map(([k, v]) => [k, { ...v }]);
  }

  /** Hook for subclasses: make the state durable after a successful commit. */
  protected async persist(): Promise<void> {}

  private childNames(path: string): string[] {
    const prefix = path === '/' ? '/' : `${path}/`;
    const out: string[] = [];
    for (const key of this.nodes.keys()) {
      if (key !== '/' && key.startsWith(prefix) && !key.slice(prefix.length).includes('/')) out.push(key.slice(prefix.length));
    }
    return out.sort();
  }

  private apply(ops: readonly KvOp[]): void {
    // Validate against a working copy so a refused commit changes nothing.
    const work = new Map(this.nodes);
    let created = this.lastCreated;
    const touched = new Set<string>();
    const hasChildren = (p: string): boolean => {
      const prefix = p === '/' ? '/' : `${p}/`;
      for (const k of work.keys()) if (k !== p && k.startsWith(prefix)) return true;
      return false;
    };
    for (const op of ops) {
      const cur = work.get(op.path);
      const versionOk = (v: number): boolean => v < 0 || (cur !== undefined && cur.version === v);
      switch (op.type) {
        case 'create':
          if (cur) throw new KvConflict(op, 'exists');
          if (!work.has(parentOf(op.path))) throw new KvConflict(op, 'missing');
          work.set(op.path, { data: op.data, version: 0, created: ++created });
          touched.add(op.path).add(parentOf(op.path));
          break;
        case 'set':
          if (!cur) throw new KvConflict(op, 'missing');
          if (!versionOk(op.version)) throw new KvConflict(op, 'version');
          work.set(op.path, { data: op.data, version: cur.version + 1, created: cur.created });
          touched.add(op.path);
          break;
        case 'delete':
          if (!cur) throw new KvConflict(op, 'missing');
          if (!versionOk(op.version)) throw new KvConflict(op, 'version');
          if (hasChildren(op.path)) throw new KvConflict(op, 'not-empty');
          work.delete(op.path);
          touched.add(op.path).add(parentOf(op.path));
          break;
        case 'check':
          if (!cur) throw new KvConflict(op, 'missing');
          if (!versionOk(op.version)) throw new KvConflict(op, 'version');
          break;
        default: {
          const never: never = op;
          throw new Error(`unknown op ${JSON.stringify(never)}`);
        }
      }
    }
    this.nodes.clear();
    for (const [k, v] of work) this.nodes.set(k, v);
    this.lastCreated = created;
    for (const p of this.ephemerals) if (!work.has(p)) this.ephemerals.delete(p);
    for (const p of touched) {
      const set = this.watchers.get(p);
      if (set) for (const l of set) queueMicrotask(l);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('store is closed');
  }
}
