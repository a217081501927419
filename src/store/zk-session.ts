/**
 * ZkSession: promise methods on ZooKeeper for ZkKvStore, seeing only the
 * KvStore port's errors (KvConflict, KvUnavailable). A thin composition of
 * the parts under ./zk/:
 *   connection.ts           the client: connect, session events, expiry →
 *                           new client, fail-fast calls with a deadline
 *   supervisor.ts           heartbeats and the handshake deadline (250 ms tick)
 *   watches.ts              one-shot ZooKeeper watches re-armed like the port's
 *   errors.ts               ZooKeeper codes → port errors (the only place)
 *   library-workarounds.ts  node-zookeeper-client 1.1.3 internals we patch
 *                           (TLS connect, connection problems among them)
 *   options.ts              options, defaults, credentials, path checks
 *   acl.ts                  digest auth and the ACL of every node created
 *   secure-tree.ts          the ACL put on an existing tree (store secure)
 *
 * Paths are relative to `chroot`, which open() creates first through a
 * connection without the chroot (with one, every call fails NO_NODE until
 * the chroot exists). A session can be resumed from `credentials()` of an
 * earlier process (`resume`), or detached to be resumed later.
 */
/// <reference path="./node-zookeeper-client.d.ts" />
import zookeeper from 'node-zookeeper-client';
import { silentLog, type Log } from '../log.js';
import { KvConflict, type KvOp, KvUnavailable } from './kv-store.js';
import { ZkConnection } from './zk/connection.js';
import { failedOp, isNoNode } from './zk/errors.js';
import { pinLastOpVersion } from './zk/library-workarounds.js';
import {
  type ResolvedOptions,
  type ZkCredentials,
  type ZkNode,
  type ZkSessionEvent,
  type ZkSessionOptions,
  hex,
  resolveOptions,
  usableCredentials,
  validatePath,
} from './zk/options.js';
import { type SecureResult, secureTree } from './zk/secure-tree.js';
import { ZkWatches } from './zk/watches.js';

export type { WatchKind, ZkCredentials, ZkNode, ZkSessionEvent, ZkSessionOptions } from './zk/options.js';
export { handshakeDeadlineMs } from './zk/supervisor.js';

const { CreateMode } = zookeeper;

/** ZooKeeper's default jute.maxbuffer is 0xfffff bytes per request. */
const MAX_REQUEST_BYTES = 1_000_000;

/** What to check, from the reason a connection failed. */
const connectHint = (problem: string | undefined, tls: boolean): string => {
  if (problem === undefined) return '';
  if (/certificate|self.signed|CERT_|Hostname\/IP/i.test(problem)) return ': the server certificate is not trusted; check --zk-tls-ca (and that the certificate names this host or IP)';
  if (!tls && /without answering the session handshake/.test(problem)) return ': is this a TLS port (secureClientPort)? set --zk-tls-ca';
  if (tls && /socket disconnected|before secure TLS connection|wrong version number|packet length too long/i.test(problem)) return ': the server did not speak TLS there; is this its secureClientPort?';
  return '';
};

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');
/** A zxid (8 bytes, big-endian: epoch << 32 | counter) as a number; exact below 2^53 (epochs below 2^21). */
const zxidNumber = (b: Buffer): number => Number(b.readBigUInt64BE(0));
const anyVersion = (v: number): number => (v < 0 ? -1 : v);

export class ZkSession {
  private readonly conn: ZkConnection;
  private readonly watches: ZkWatches;
  /** The ACL of every node this session creates. */
  private readonly acl: zookeeper.ACL[];
  private readonly hasAuth: boolean;

  private constructor(o: ResolvedOptions, chroot: string, log: Log) {
    this.acl = o.acl;
    this.hasAuth = o.auth !== undefined;
    this.conn = new ZkConnection(o, chroot, log, () => this.watches.rearmAll());
    this.watches = new ZkWatches(this.conn, o.watchKind, log);
  }

  /**
   * Connect (creating the chroot if missing, unless `createChroot` is false).
   * Rejects with KvUnavailable if no server answers within connectTimeoutMs.
   */
  static async open(opts: ZkSessionOptions): Promise<ZkSession> {
    const o = resolveOptions(opts);
    const log = opts.log ?? silentLog;
    if (opts.createChroot === false) return ZkSession.connect(o, opts.chroot, log, usableCredentials(opts.resume));
    const root = await ZkSession.connect(o, '', log);
    try {
      await root.mkdirp(opts.chroot);
    } finally {
      await root.close();
    }
    return ZkSession.connect(o, opts.chroot, log, usableCredentials(opts.resume));
  }

  private static async connect(o: ResolvedOptions, chroot: string, log: Log, resume?: ZkCredentials): Promise<ZkSession> {
    const s = new ZkSession(o, chroot, log);
    const ready = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        off();
        resolve(false);
      }, o.connectTimeoutMs);
      const off = s.onSession((event) => {
        if (event !== 'connected') return;
        clearTimeout(timer);
        off();
        resolve(true);
      });
    });
    s.conn.start(resume);
    if (!(await ready)) {
      const problem = s.conn.lastProblem();
      await s.close();
      throw new KvUnavailable(
        `cannot reach ZooKeeper at ${o.servers.join(',')}${o.tls ? ' over TLS' : ''} (no session within ${o.connectTimeoutMs} ms${problem ? `; last error: ${problem}` : ''})${connectHint(problem, o.tls !== undefined)}`,
      );
    }
    return s;
  }

  isConnected(): boolean {
    return this.conn.isConnected();
  }

  /**
   * The current session's id, 16 hex digits, as in ZkNode.ephemeralOwner. Kept
   * while disconnected (the session may live on); all zeros (never an owner)
   * before the first session and between an expiry and the next 'connected'.
   */
  sessionId(): string {
    return this.conn.sessionId();
  }

  /**
   * Listen to session events; returns unsubscribe. 'connected' (a new
   * session), 'disconnected', 'reconnected' (same session), 'expired'
   * (re-create ephemeral nodes on the next 'connected').
   */
  onSession(listener: (event: ZkSessionEvent) => void): () => void {
    return this.conn.onSession(listener);
  }

  async get(path: string): Promise<ZkNode | undefined> {
    return this.conn.call<ZkNode | undefined>(`get ${path}`, (c, done) =>
      c.getData(path, undefined, (e, data, stat) => {
        if (isNoNode(e)) done(null, undefined);
        else if (e || !stat) done(e ?? new Error('no stat in reply'));
        else {
          const owner = stat.ephemeralOwner.every((b) => b === 0) ? '' : hex(stat.ephemeralOwner);
          const createdMs = Number(stat.ctime.readBigInt64BE(0));
          done(null, { data: data ? data.toString('utf8') : '', version: stat.version, created: zxidNumber(stat.czxid), ephemeralOwner: owner, createdMs });
        }
      }),
    );
  }

  /** Child names, sorted; [] if the node does not exist. */
  async children(path: string): Promise<string[]> {
    return this.conn.call<string[]>(`children ${path}`, (c, done) =>
      c.getChildren(path, undefined, (e, children) => {
        if (isNoNode(e)) done(null, []);
        else if (e) done(e);
        else done(null, [...(children ?? [])].sort());
      }),
    );
  }

  /** All operations in one ZooKeeper multi: all or nothing. */
  async commit(ops: readonly KvOp[]): Promise<void> {
    if (ops.length === 0) return;
    const bytes = ops.reduce((n, op) => n + op.path.length + ('data' in op ? Buffer.byteLength(op.data) : 0), 0);
    if (bytes > MAX_REQUEST_BYTES) throw new Error(`commit too large for ZooKeeper (${bytes} bytes; the limit is about 1 MB)`);
    const listed = ops.slice(0, 3).map((op) => `${op.type} ${op.path}`);
    if (ops.length > 3) listed.push(`${ops.length - 3} more`);
    await this.conn.call<void>(`commit (${listed.join(', ')})`, (c, done) => {
      const tx = c.transaction();
      for (const op of ops) {
        switch (op.type) {
          case 'create':
            tx.create(op.path, utf8(op.data), this.acl, CreateMode.PERSISTENT);
            break;
          case 'set':
            tx.setData(op.path, utf8(op.data), anyVersion(op.version));
            break;
          case 'delete':
            tx.remove(op.path, anyVersion(op.version));
            break;
          case 'check':
            tx.check(op.path, anyVersion(op.version));
            break;
          default: {
            const never: never = op;
            throw new Error(`unknown op ${JSON.stringify(never)}`);
          }
        }
        if (op.type !== 'create') pinLastOpVersion(tx, anyVersion(op.version));
      }
      tx.commit((e, results) => {
        if (!e) done(null);
        else done(e, undefined, failedOp(ops, results));
      });
    });
  }

  /** Create an ephemeral node owned by this session (gone when the session ends). KvConflict 'exists' if taken. */
  async createEphemeral(path: string, data: string): Promise<void> {
    const op: KvOp = { type: 'create', path, data };
    await this.conn.call<void>(`create ephemeral ${path}`, (c, done) =>
      c.create(path, utf8(data), this.acl, CreateMode.EPHEMERAL, (e) => done(e, undefined, op)),
    );
  }

  /** Create every missing node along `path` (empty data). */
  async mkdirp(path: string): Promise<void> {
    validatePath(path);
    let p = '';
    for (const part of path.split('/').slice(1)) {
      p = `${p}/${part}`;
      const op: KvOp = { type: 'create', path: p, data: '' };
      try {
        await this.conn.call<void>(`create ${p}`, (c, done) =>
          c.create(op.path, utf8(''), this.acl, CreateMode.PERSISTENT, (e) => done(e, undefined, op)),
        );
      } catch (e) {
        if (!(e instanceof KvConflict && e.reason === 'exists')) throw e;
      }
    }
  }

  /**
   * Give every node of the tree (the chroot node included) the ACL of this
   * session's credentials (`tsoverlay store secure`). Needs `auth`.
   */
  async secure(): Promise<SecureResult> {
    if (!this.hasAuth) throw new Error('securing the store needs credentials (--zk-auth-file)');
    return secureTree(this.conn, this.acl);
  }

  /** Call `listener` after changes of the node's data or its set of children; returns unsubscribe. */
  watch(path: string, listener: () => void): () => void {
    return this.watches.watch(path, listener);
  }

  /** The current session's credentials, to resume it from another process; undefined without a session. */
  credentials(): ZkCredentials | undefined {
    return this.conn.credentials();
  }

  /**
   * Stop using the session without ending it: the connection drops, the
   * session (and its ephemeral nodes) lives on until it times out or another
   * process resumes it with `credentials()`.
   */
  async detach(): Promise<void> {
    this.watches.clear();
    return this.conn.detach();
  }

  /** End the session (its ephemeral nodes go away) and stop every timer. */
  async close(): Promise<void> {
    this.watches.clear();
    return this.conn.close();
  }
}
