/**
 * The KvStore port on ZooKeeper: a thin mapping onto ZkSession, which owns
 * the client, maps errors, fails fast, re-arms watches and survives session
 * expiry. On top of the port it offers what node membership needs:
 * ephemeral nodes, their owner, and session events.
 *
 *   const kv = await ZkKvStore.open({ servers: ['10.0.0.1:2181'], chroot: '/tsoverlay', log });
 *   kv.onSession((e) => { if (e === 'connected') void registerThisHost(); });
 */
import type { EphemeralOwner, KvOp, KvStore, SessionEvent, Versioned } from './kv-store.js';
import { type ZkCredentials, ZkSession, type ZkSessionOptions } from './zk-session.js';

export type { WatchKind, ZkCredentials, ZkNode, ZkSessionEvent, ZkSessionOptions } from './zk-session.js';

export class ZkKvStore implements KvStore {
  private constructor(private readonly session: ZkSession) {}

  /** Connect, creating the chroot if missing; rejects with KvUnavailable if ZooKeeper cannot be reached in time. */
  static async open(opts: ZkSessionOptions): Promise<ZkKvStore> {
    return new ZkKvStore(await ZkSession.open(opts));
  }

  async get(path: string): Promise<Versioned | undefined> {
    const n = await this.session.get(path);
    return n ? { data: n.data, version: n.version } : undefined;
  }

  children(path: string): Promise<string[]> {
    return this.session.children(path);
  }

  commit(ops: readonly KvOp[]): Promise<void> {
    return this.session.commit(ops);
  }

  watch(path: string, listener: () => void): () => void {
    return this.session.watch(path, listener);
  }

  /** Ends the session: this store's ephemeral nodes disappear at once. */
  close(): Promise<void> {
    return this.session.close();
  }

  /** Session id and password to resume this session from the next process (a secret). */
  credentials(): ZkCredentials | undefined {
    return this.session.credentials();
  }

  /** Disconnect but keep the session alive until it times out or is resumed. */
  detach(): Promise<void> {
    return this.session.detach();
  }

  /** Create an ephemeral node of this session. KvConflict 'exists' if the node is taken, 'missing' if its parent is. */
  createEphemeral(path: string, data: string): Promise<void> {
    return this.session.createEphemeral(path, data);
  }

  /** A node with its owning session (compare `ephemeralOwner` with sessionId(); '' if persistent); undefined if missing. */
  getOwner(path: string): Promise<EphemeralOwner | undefined> {
    return this.session.get(path);
  }

  /** This store's current session id (hex). */
  sessionId(): string {
    return this.session.sessionId();
  }

  isConnected(): boolean {
    return this.session.isConnected();
  }

  /** 'connected' (new session: re-create ephemeral nodes), 'disconnected', 'reconnected' (same session), 'expired'. */
  onSession(listener: (event: SessionEvent) => void): () => void {
    return this.session.onSession(listener);
  }
}
