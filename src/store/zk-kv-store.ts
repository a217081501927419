/**
 * The KvStore port on ZooKeeper: a thin mapping onto ZkSession, which owns
 * the client, maps errors, fails fast, re-arms watches and survives session
 * expiry. On top of the port it offers what node membership needs:
 * ephemeral nodes, their owner, and session events.
 *
 *   const kv = await ZkKvStore.open({ servers: ['10.0.0.1:2181'], chroot: '/tsoverlay', log });
 *   kv.onSession((e) => { if (e === 'connected') void registerThisHost(); });
 */
import { type Metrics, noMetrics, secondsSince } from '../metrics/metrics.js';
import { type EphemeralOwner, KvConflict, type KvOp, type KvStore, type SessionEvent, type Versioned } from './kv-store.js';
import type { SecureResult } from './zk/secure-tree.js';
import { type ZkCredentials, ZkSession, type ZkSessionOptions } from './zk-session.js';

export type { SecureResult } from './zk/secure-tree.js';
export type { WatchKind, ZkCredentials, ZkNode, ZkSessionEvent, ZkSessionOptions } from './zk-session.js';

export class ZkKvStore implements KvStore {
  private constructor(
    private readonly session: ZkSession,
    private readonly metrics: Metrics,
  ) {}

  /**
   * Connect, creating the chroot if missing; rejects with KvUnavailable if
   * ZooKeeper cannot be reached in time. `metrics` hears of every request
   * and session change from then on.
   */
  static async open(opts: ZkSessionOptions, metrics: Metrics = noMetrics): Promise<ZkKvStore> {
    const store = new ZkKvStore(await ZkSession.open(opts), metrics);
    metrics.zkState(store.isConnected() ? 'connected' : 'disconnected');
    store.onSession((e) => {
      metrics.zkState(e === 'connected' || e === 'reconnected' ? 'connected' : e);
      if (e === 'reconnected') metrics.zkReconnect('resumed');
      else if (e === 'connected') metrics.zkReconnect('new');
    });
    return store;
  }

  async get(path: string): Promise<Versioned | undefined> {
    const n = await this.timed('get', this.session.get(path));
    return n ? { data: n.data, version: n.version, created: n.created } : undefined;
  }

  children(path: string): Promise<string[]> {
    return this.timed('children', this.session.children(path));
  }

  commit(ops: readonly KvOp[]): Promise<void> {
    return this.timed('commit', this.session.commit(ops));
  }

  /** One request's latency and outcome, for the metrics (a conflict is an answer, not a failure). */
  private timed<T>(op: string, request: Promise<T>): Promise<T> {
    const t0 = performance.now();
    return request.then(
      (v) => (this.metrics.zkRequest(op, secondsSince(t0), true), v),
      (e: unknown) => {
        this.metrics.zkRequest(op, secondsSince(t0), e instanceof KvConflict);
        throw e;
      },
    );
  }

  watch(path: string, listener: () => void): () => void {
    return this.session.watch(path, listener);
  }

  /** Give every node under the chroot (and the chroot node) the ACL of the credentials (`tsoverlay store secure`). */
  secure(): Promise<SecureResult> {
    return this.session.secure();
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
    return this.timed('create_ephemeral', this.session.createEphemeral(path, data));
  }

  /** A node with its owning session (compare `ephemeralOwner` with sessionId(); '' if persistent); undefined if missing. */
  getOwner(path: string): Promise<EphemeralOwner | undefined> {
    return this.timed('get', this.session.get(path));
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
