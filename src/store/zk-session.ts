/**
 * ZkSession: the one owner of the node-zookeeper-client client (style guide
 * §7). Everything else uses these promise methods and sees only the port's
 * errors, mapped once here:
 *   NO_NODE → KvConflict 'missing', NODE_EXISTS → 'exists', BAD_VERSION →
 *   'version', NOT_EMPTY → 'not-empty' (blamed on the operation that failed);
 *   CONNECTION_LOSS, SESSION_EXPIRED, OPERATION_TIMEOUT, not connected, no
 *   answer within `callTimeoutMs` → KvUnavailable.
 *
 * Behaviour:
 * - Fail fast: a call while not connected rejects at once (nothing is queued
 *   for later), and every call rejects with KvUnavailable after
 *   `callTimeoutMs` whatever the library does.
 * - Paths are relative to `chroot`, which open() creates first through a
 *   connection without the chroot (with one, every call fails NO_NODE until
 *   the chroot exists).
 * - Watches are one-shot in ZooKeeper: each watched path is re-armed
 *   (getData and/or getChildren, as `watchKind` says, or exists while the
 *   node is missing) every time it fires, and listeners stay registered
 *   until unsubscribed. After a reconnect or a new session every watch is
 *   re-armed and every listener fires once, because anything may have
 *   changed meanwhile.
 * - A ZooKeeper watch starts when the server reads the node, not when
 *   watch() is called; another client's change in between would go
 *   unreported. So the first arming compares the node's mzxid/pzxid (its
 *   parent's pzxid if it is gone) with the last zxid this client had seen
 *   when watch() was called, and fires if anything is newer: like the
 *   memory store, every change after watch() is reported (rarely one more).
 * - Session events (onSession): 'connected' (a new session: first connect,
 *   or after an expiry), 'disconnected' (connection lost, the session may
 *   live on), 'reconnected' (same session back: ephemeral nodes still there),
 *   'expired' (session gone with its ephemeral nodes; the expired client is
 *   unusable, so it is dropped and a new one started — re-create ephemeral
 *   nodes on the following 'connected').
 * - Liveness: the library has no read timeout (a frozen server or a silent
 *   network leaves it "connected" forever) and its connect timeout ends when
 *   TCP is up, not when the session handshake is answered. A supervisor tick
 *   sends a heartbeat every third of the session timeout and drops the
 *   connection (the library then reconnects) if one stays unanswered for
 *   another third; it also drops a handshake that is not answered in time
 *   (handshakeDeadlineMs: soon enough to keep a session being resumed).
 *
 * Library internals touched (node-zookeeper-client 1.1.3, pinned), all in the
 * "library internals" section below: Transaction.ops (its setData/remove/
 * check turn version 0 into -1 with `version || -1`), and the connection
 * manager's socket/state to drop a dead connection, to stop a client for
 * good, and to survive an unknown error code (the library throws from its
 * socket data handler on codes it does not know).
 */
/// <reference path="./node-zookeeper-client.d.ts" />
import type { Socket } from 'node:net';
import zookeeper from 'node-zookeeper-client';
import { type Log, silentLog } from '../log.js';
import {
  type EphemeralOwner,
  KvConflict,
  type KvConflictReason,
  type KvOp,
  KvUnavailable,
  type SessionEvent,
  parentOf,
} from './kv-store.js';

const { Exception: Code, CreateMode } = zookeeper;


export type ZkSessionEvent = SessionEvent;

export interface ZkSessionOptions {
  /** "host:port" each (IPv6 literals are not supported by the library). */
  servers: string[];
  /** Absolute path all other paths are relative to, e.g. "/tsoverlay"; created if missing. */
  chroot: string;
  /** Requested session timeout; the server clamps it to [2, 20] × its tickTime. Default 10 s. */
  sessionTimeoutMs?: number;
  /** How long open() waits for the first connection. Default 10 s. */
  connectTimeoutMs?: number;
  /** Deadline of every call. Default 5 s. */
  callTimeoutMs?: number;
  /**
   * Resume this session (from `credentials()` of an earlier process) instead
   * of starting a new one: its ephemeral nodes are still there if it has not
   * expired. An expired one is replaced by a new session as usual.
   */
  resume?: ZkCredentials;
  log?: Log;
  /**
   * What a watch on a path must report: changes of its children only (a
   * folder), of its data only (a record), or both (the default). Arming a
   * watch takes one request instead of two for the first two.
   */
  watchKind?: (path: string) => WatchKind;
}

export type WatchKind = 'children' | 'data' | 'both';

/** Session id and password (hex): a secret, never logged. */
export interface ZkCredentials {
  id: string;
  password: string;
}

/** A node with its owner: `ephemeralOwner` is the owning session's id (as sessionId()), '' for a persistent node. */
export type ZkNode = EphemeralOwner;

const NO_SESSION = '0000000000000000';
/** ZooKeeper's default jute.maxbuffer is 0xfffff bytes per request. */
const MAX_REQUEST_BYTES = 1_000_000;
/** Supervisor period: heartbeats are timed, not counted; a short tick notices a silent handshake sooner. */
const TICK_MS = 250;

/**
 * How long a session handshake may stay unanswered before the connection is
 * dropped and tried again (the library would wait sessionTimeout/servers).
 * - Resuming a session: the server answers from memory (no write), and the
 *   session is lost unless a handshake completes within its timeout. A third
 *   of it, split over the servers, at least 1 s, leaves time for two more
 *   tries. ZooKeeper 3.8 accepts a connection that arrives while it starts
 *   and may then leave it open and silent (ZOOKEEPER-5051); waiting the full
 *   timeout for that one lost the session after a server restart.
 * - A new session is a write (fsync on a quorum): sessionTimeout/servers, at
 *   least 2 s.
 */
export const handshakeDeadlineMs = (sessionTimeoutMs: number, servers: number, resuming: boolean): number =>
  resuming
    ? Math.max(1000, Math.floor(sessionTimeoutMs / (3 * servers)))
    : Math.max(2000, Math.floor(sessionTimeoutMs / servers));


// ---- error mapping (the only place ZooKeeper codes are interpreted) --------

const CONFLICTS = new Map<number, KvConflictReason>([
  [Code.NO_NODE, 'missing'],
  [Code.NODE_EXISTS, 'exists'],
  [Code.BAD_VERSION, 'version'],
  [Code.NOT_EMPTY, 'not-empty'],
]);
const UNAVAILABLE = new Set<number>([Code.CONNECTION_LOSS, Code.SESSION_EXPIRED, Code.OPERATION_TIMEOUT]);

const zkCode = (e: unknown): number | undefined =>
  typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'number' ? e.code : undefined;

const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e));

const toStoreError = (e: unknown, what: string, blame: KvOp | undefined): Error => {
  const code = zkCode(e);
  if (code === undefined) return new Error(`${what}: ${describe(e)}`, { cause: e });
  const name = e instanceof Error ? e.name : String(code);
  if (UNAVAILABLE.has(code)) return new KvUnavailable(`ZooKeeper ${name} during ${what}`, { cause: e });
  const reason = CONFLICTS.get(code);
  if (reason !== undefined && blame) return new KvConflict(blame, reason);
  return new Error(`ZooKeeper ${name} during ${what}`, { cause: e });
};

// ---- small helpers -----------------------------------------------------------

const hex = (b: Buffer): string => b.toString('hex').padStart(16, '0');
const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');
const anyVersion = (v: number): number => (v < 0 ? -1 : v);
/** zxids are positive 64-bit big-endian numbers. */
const newer = (zxid: Buffer, than: Buffer): boolean => Buffer.compare(zxid, than) > 0;

/** Same rules as the library's Path.validate, but throws a plain Error. */
const validatePath = (path: string): void => {
  if (path === '/') return;
  if (!path.startsWith('/') || path.endsWith('/') || path.slice(1).split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`invalid ZooKeeper path "${path}"`);
  }
};

// ---- library internals -------------------------------------------------------

/** lib/ConnectionManager.js STATES. */
const CM = { CONNECTING: 1, CLOSED: -2 } as const;

/** Close the current socket; the library reconnects (same session) by itself. */
const dropConnection = (c: zookeeper.Client): void => {
  const cm = c.connectionManager;
  cm.pendingBuffer = null; // a half-read reply must not be glued to the next connection's bytes
  cm.socket?.destroy();
};

/**
 * Stop a client for good, whatever its state: the library reconnects from
 * every socket close except in CLOSING/EXPIRED, and close() alone sends
 * closeSession through whatever socket it has.
 */
const hardStop = (c: zookeeper.Client): void => {
  const cm = c.connectionManager;
  const stopSocket = (): void => {
    if (cm.connectTimeoutHandler) clearTimeout(cm.connectTimeoutHandler);
    cm.connectTimeoutHandler = null;
    cm.socket?.destroy();
  };
  cm.connect = () => {};
  cm.onSocketConnected = stopSocket; // a connect already under way (spin delay) ends here
  if (cm.state !== CM.CLOSED) cm.setState(CM.CLOSED);
  stopSocket();
};

/** An unknown error code makes the library throw from its socket handler: drop the connection instead of crashing. */
const guardDataHandler = (c: zookeeper.Client, log: Log): void => {
  const cm = c.connectionManager;
  const original = cm.onSocketData.bind(cm);
  cm.onSocketData = (buffer: Buffer) => {
    try {
      original(buffer);
    } catch (e) {
      log.error({ err: describe(e) }, 'ZooKeeper client failed to read a reply; reconnecting');
      dropConnection(c);
    }
  };
};

// ---- the session -------------------------------------------------------------

interface WatchEntry {
  readonly path: string;
  readonly listeners: Set<() => void>;
  /** The one function registered with the library for this path (it de-duplicates by identity). */
  readonly notify: () => void;
  /** Last zxid the client had seen when watch() was called; cleared after the first arming. */
  since: Buffer | undefined;
  busy: boolean;
  again: boolean;
}

interface Resolved {
  servers: string[];
  sessionTimeoutMs: number;
  connectTimeoutMs: number;
  callTimeoutMs: number;
  watchKind: (path: string) => WatchKind;
}

const isHex = (s: string, bytes: number): boolean => new RegExp(`^[0-9a-f]{${bytes * 2}}$`).test(s);

type Done<T> = (error: unknown, value?: T, blame?: KvOp) => void;

export class ZkSession {
  private client: zookeeper.Client | undefined;
  private connected = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly sessionListeners = new Set<(event: ZkSessionEvent) => void>();
  private readonly watches = new Map<string, WatchEntry>();
  private readonly supervisor: NodeJS.Timeout;
  private heartbeat: { client: zookeeper.Client; sentAt: number } | undefined;
  private lastBeatAt = 0;
  private handshake: { socket: Socket; since: number } | undefined;
  /** Credentials for the next client only (session resumption). */
  private resume: ZkCredentials | undefined;

  private constructor(
    private readonly o: Resolved,
    private readonly chroot: string,
    private readonly log: Log,
  ) {
    this.supervisor = setInterval(() => this.tick(), TICK_MS);
  }

  /** Connect (creating the chroot if missing). Rejects with KvUnavailable if no server answers within connectTimeoutMs. */
  static async open(opts: ZkSessionOptions): Promise<ZkSession> {
    const o: Resolved = {
      servers: [...opts.servers],
      sessionTimeoutMs: opts.sessionTimeoutMs ?? 10_000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      callTimeoutMs: opts.callTimeoutMs ?? 5_000,
      watchKind: opts.watchKind ?? (() => 'both'),
    };
    if (o.servers.length === 0) throw new Error('no ZooKeeper servers given');
    for (const s of o.servers) {
      if (!/^[^\s,/:]+:\d{1,5}$/.test(s)) throw new Error(`ZooKeeper server "${s}" is not host:port (IPv6 literals are not supported)`);
    }
    validatePath(opts.chroot);
    if (opts.chroot === '/') throw new Error('the ZooKeeper chroot must not be "/"');
    const log = opts.log ?? silentLog;
    const root = await ZkSession.connect(o, '', log);
    try {
      await root.mkdirp(opts.chroot);
    } finally {
      await root.close();
    }
    const resume = opts.resume && isHex(opts.resume.id, 8) && isHex(opts.resume.password, 16) ? opts.resume : undefined;
    return ZkSession.connect(o, opts.chroot, log, resume);
  }

  private static async connect(o: Resolved, chroot: string, log: Log, resume?: ZkCredentials): Promise<ZkSession> {
    const s = new ZkSession(o, chroot, log);
    s.resume = resume;
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
    s.startClient();
    if (!(await ready)) {
      await s.close();
      throw new KvUnavailable(`cannot reach ZooKeeper at ${o.servers.join(',')} (no session within ${o.connectTimeoutMs} ms)`);
    }
    return s;
  }

  isConnected(): boolean {
    return this.connected;
  }

  /**
   * The current session's id, 16 hex digits, as in ZkNode.ephemeralOwner. Kept
   * while disconnected (the session may live on); all zeros (never an owner)
   * before the first session and between an expiry and the next 'connected'.
   */
  sessionId(): string {
    return this.client ? hex(this.client.getSessionId()) : NO_SESSION;
  }

  /** Listen to session events; returns unsubscribe. */
  onSession(listener: (event: ZkSessionEvent) => void): () => void {
    this.sessionListeners.add(listener);
    return () => {
      this.sessionListeners.delete(listener);
    };
  }

  async get(path: string): Promise<ZkNode | undefined> {
    return this.call<ZkNode | undefined>(`get ${path}`, (c, done) =>
      c.getData(path, undefined, (e, data, stat) => {
        if (zkCode(e) === Code.NO_NODE) done(null, undefined);
        else if (e || !stat) done(e ?? new Error('no stat in reply'));
        else {
          const owner = stat.ephemeralOwner.every((b) => b === 0) ? '' : hex(stat.ephemeralOwner);
          done(null, { data: data ? data.toString('utf8') : '', version: stat.version, ephemeralOwner: owner });
        }
      }),
    );
  }

  /** Child names, sorted; [] if the node does not exist. */
  async children(path: string): Promise<string[]> {
    return this.call<string[]>(`children ${path}`, (c, done) =>
      c.getChildren(path, undefined, (e, children) => {
        if (zkCode(e) === Code.NO_NODE) done(null, []);
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
    await this.call<void>(`commit (${listed.join(', ')})`, (c, done) => {
      const tx = c.transaction();
      for (const op of ops) {
        switch (op.type) {
          case 'create':
            tx.create(op.path, utf8(op.data), CreateMode.PERSISTENT);
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
        // library internals: its builder does `version || -1`, which turns version 0 into "any version"
        const added = tx.ops[tx.ops.length - 1];
        if (added && op.type !== 'create') added.version = anyVersion(op.version);
      }
      tx.commit((e, results) => {
        if (!e) {
          done(null);
          return;
        }
        // ops before the failing one report OK, the ones after RUNTIME_INCONSISTENCY
        const i = (results ?? []).findIndex((r) => r.err !== undefined && r.err !== Code.OK && r.err !== Code.RUNTIME_INCONSISTENCY);
        done(e, undefined, ops[i] ?? (ops.length === 1 ? ops[0] : undefined));
      });
    });
  }

  /** Create an ephemeral node owned by this session (gone when the session ends). KvConflict 'exists' if taken. */
  async createEphemeral(path: string, data: string): Promise<void> {
    const op: KvOp = { type: 'create', path, data };
    await this.call<void>(`create ephemeral ${path}`, (c, done) =>
      c.create(path, utf8(data), CreateMode.EPHEMERAL, (e) => done(e, undefined, op)),
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
        await this.call<void>(`create ${p}`, (c, done) => c.create(op.path, utf8(''), CreateMode.PERSISTENT, (e) => done(e, undefined, op)));
      } catch (e) {
        if (!(e instanceof KvConflict && e.reason === 'exists')) throw e;
      }
    }
  }

  /** Call `listener` after changes of the node's data or its set of children; returns unsubscribe. */
  watch(path: string, listener: () => void): () => void {
    validatePath(path);
    if (this.closed) return () => {};
    let entry = this.watches.get(path);
    if (!entry) {
      const created: WatchEntry = {
        path,
        listeners: new Set(),
        notify: () => {
          if (this.isLive(created)) this.refresh(created, true);
        },
        since: this.client ? Buffer.from(this.client.connectionManager.zxid) : undefined,
        busy: false,
        again: false,
      };
      entry = created;
      this.watches.set(path, created);
      this.refresh(created, false);
    }
    const e = entry;
    e.listeners.add(listener);
    return () => {
      e.listeners.delete(listener);
      if (e.listeners.size === 0 && this.watches.get(path) === e) this.watches.delete(path);
    };
  }

  /** The current session's credentials, to resume it from another process; undefined without a session. */
  credentials(): ZkCredentials | undefined {
    const c = this.client;
    if (!c || this.sessionId() === NO_SESSION) return undefined;
    return { id: hex(c.getSessionId()), password: c.getSessionPassword().toString('hex') };
  }

  /**
   * Stop using the session without ending it: the connection drops, the
   * session (and its ephemeral nodes) lives on until it times out or another
   * process resumes it with `credentials()`.
   */
  async detach(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.connected = false;
    clearInterval(this.supervisor);
    this.watches.clear();
    this.sessionListeners.clear();
    const c = this.client;
    this.client = undefined;
    if (c) hardStop(c);
    this.closing = Promise.resolve();
    return this.closing;
  }

  /** End the session (its ephemeral nodes go away) and stop every timer. */
  async close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    const wasConnected = this.connected;
    this.connected = false;
    clearInterval(this.supervisor);
    this.watches.clear();
    this.sessionListeners.clear();
    const c = this.client;
    this.client = undefined;
    this.closing = c ? this.shutdown(c, wasConnected) : Promise.resolve();
    return this.closing;
  }

  // ---- client lifecycle --------------------------------------------------------

  private startClient(): void {
    const connectString = this.o.servers.join(',') + this.chroot;
    const resume = this.resume;
    this.resume = undefined;
    const c = zookeeper.createClient(connectString, {
      sessionTimeout: this.o.sessionTimeoutMs,
      spinDelay: 500,
      retries: 0,
      ...(resume ? { sessionId: Buffer.from(resume.id, 'hex'), sessionPassword: Buffer.from(resume.password, 'hex') } : {}),
    });
    guardDataHandler(c, this.log);
    this.client = c;
    let sessionUp = false;
    c.on('connected', () => {
      if (c !== this.client || this.closed) return;
      const event: ZkSessionEvent = sessionUp ? 'reconnected' : 'connected';
      sessionUp = true;
      this.connected = true;
      this.handshake = undefined;
      this.heartbeat = undefined;
      this.lastBeatAt = Date.now();
      this.log.info(
        { sessionId: hex(c.getSessionId()), sessionTimeoutMs: c.getSessionTimeout(), chroot: this.chroot || '/' },
        event === 'connected' ? 'ZooKeeper session established' : 'ZooKeeper connection restored',
      );
      this.emit(event);
      for (const entry of this.watches.values()) this.refresh(entry, true);
    });
    c.on('disconnected', () => {
      if (c !== this.client || this.closed || !this.connected) return;
      this.connected = false;
      this.heartbeat = undefined;
      this.log.warn({ sessionId: hex(c.getSessionId()) }, 'ZooKeeper connection lost; reconnecting');
      this.emit('disconnected');
    });
    c.on('expired', () => {
      if (c !== this.client || this.closed) return;
      this.connected = false;
      this.heartbeat = undefined;
      this.client = undefined;
      this.log.warn({ sessionId: hex(c.getSessionId()) }, 'ZooKeeper session expired; starting a new session');
      setImmediate(() => hardStop(c)); // not from inside the library's own data handler
      this.emit('expired');
      if (!this.closed) this.startClient();
    });
    c.on('authenticationFailed', () => this.log.error({}, 'ZooKeeper authentication failed'));
    c.connect();
  }

  private async shutdown(c: zookeeper.Client, graceful: boolean): Promise<void> {
    if (graceful) {
      // closeSession, then the server closes the socket: ephemeral nodes are gone at once
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.o.callTimeoutMs);
        c.once('disconnected', () => {
          clearTimeout(timer);
          resolve();
        });
        c.close();
      });
    }
    hardStop(c);
  }

  /** Supervisor: heartbeat while connected, handshake watchdog while connecting. */
  private tick(): void {
    const c = this.client;
    if (!c || this.closed) return;
    const now = Date.now();
    if (this.connected) {
      const third = Math.max(1000, Math.floor(c.getSessionTimeout() / 3));
      const hb = this.heartbeat;
      if (hb) {
        if (now - hb.sentAt > third) {
          this.heartbeat = undefined;
          this.log.warn({ waitedMs: now - hb.sentAt }, 'ZooKeeper server does not answer; dropping the connection');
          dropConnection(c);
        }
      } else if (now - this.lastBeatAt >= third) {
        const beat = { client: c, sentAt: now };
        this.heartbeat = beat;
        this.lastBeatAt = now;
        c.exists('/', undefined, () => {
          if (this.heartbeat === beat) this.heartbeat = undefined;
        });
      }
      return;
    }
    const cm = c.connectionManager;
    const socket = cm.socket;
    if (cm.state !== CM.CONNECTING || !socket || socket.connecting || socket.destroyed) {
      this.handshake = undefined;
      return;
    }
    // TCP is up, the session handshake is not answered yet
    const resuming = hex(c.getSessionId()) !== NO_SESSION;
    // the client's timeout: the requested one until a server negotiated it
    const deadline = handshakeDeadlineMs(c.getSessionTimeout(), this.o.servers.length, resuming);
    if (this.handshake?.socket !== socket) {
      this.handshake = { socket, since: now };
    } else if (now - this.handshake.since > deadline) {
      this.handshake = undefined;
      this.log.warn({}, 'ZooKeeper server does not answer the session handshake; trying again');
      dropConnection(c);
    }
  }

  private emit(event: ZkSessionEvent): void {
    for (const l of [...this.sessionListeners]) {
      try {
        l(event);
      } catch (e) {
        this.log.error({ event, err: describe(e) }, 'ZooKeeper session listener failed');
      }
    }
  }

  // ---- watches -----------------------------------------------------------------

  private isLive(entry: WatchEntry): boolean {
    return !this.closed && this.watches.get(entry.path) === entry;
  }

  /** Re-arm the path's watches, then fire its listeners (if `fire`, or if it changed while arming). Coalesces. */
  private refresh(entry: WatchEntry, fire: boolean): void {
    if (entry.busy) {
      entry.again = true;
      return;
    }
    entry.busy = true;
    void (async () => {
      let shouldFire = fire;
      for (;;) {
        entry.again = false;
        const armed = await this.arm(entry);
        entry.since = undefined;
        if (!this.isLive(entry)) break;
        if (shouldFire || armed !== 'unchanged') this.fire(entry);
        if (armed === 'appeared') entry.again = true; // arm again: no child watch was set on the missing node
        if (!entry.again) break;
        shouldFire = true;
      }
      entry.busy = false;
    })();
  }

  /**
   * Set data + child watches (an exists watch while the node is missing).
   * 'changed': the node changed since `entry.since`; 'appeared': it was
   * created while arming.
   */
  private async arm(entry: WatchEntry): Promise<'unchanged' | 'changed' | 'appeared'> {
    const { path, notify, since } = entry;
    if (!this.connected) return 'unchanged'; // every watch is re-armed on (re)connect
    const what = `watch ${path}`;
    const read = (e: unknown, stat: zookeeper.Stat | null | undefined, done: Done<zookeeper.Stat | null>): void => {
      if (zkCode(e) === Code.NO_NODE) done(null, null);
      else if (e) done(e);
      else done(null, stat ?? null);
    };
    const kind = this.o.watchKind(path);
    try {
      // the requests go out now, before anything the caller sends next
      const stats = await Promise.all([
        ...(kind === 'children'
          ? []
          : [this.call<zookeeper.Stat | null>(what, (c, done) => c.getData(path, notify, (e, _data, st) => read(e, st, done)))]),
        ...(kind === 'data'
          ? []
          : [this.call<zookeeper.Stat | null>(what, (c, done) => c.getChildren(path, notify, (e, _children, st) => read(e, st, done)))]),
      ]);
      if (stats[0]) {
        // two reads may straddle another client's change: look at both stats
        const changed = since !== undefined && stats.some((st) => st && (newer(st.mzxid, since) || newer(st.pzxid, since)));
        return changed ? 'changed' : 'unchanged';
      }
      const appeared = await this.call<boolean>(what, (c, done) => c.exists(path, notify, (e, st) => done(e, Boolean(st))));
      if (appeared) return 'appeared';
      if (since === undefined || path === '/') return 'unchanged';
      // missing: deleted since watch() was called if its parent's children changed since
      const parent = await this.call<zookeeper.Stat | null>(what, (c, done) => c.exists(parentOf(path), undefined, (e, st) => read(e, st, done)));
      return parent !== null && newer(parent.pzxid, since) ? 'changed' : 'unchanged';
    } catch (e) {
      if (this.closed) return 'unchanged';
      if (e instanceof KvUnavailable) this.log.debug({ path, err: e.message }, 'ZooKeeper watch not armed; will re-arm on reconnect');
      else this.log.error({ path, err: describe(e) }, 'cannot arm ZooKeeper watch');
      return 'unchanged';
    }
  }

  private fire(entry: WatchEntry): void {
    for (const l of [...entry.listeners]) {
      try {
        l();
      } catch (e) {
        this.log.error({ path: entry.path, err: describe(e) }, 'ZooKeeper watch listener failed');
      }
    }
  }

  // ---- calls -------------------------------------------------------------------

  /**
   * Run one library call: fail fast when not connected, reject with
   * KvUnavailable after the deadline, map errors once (`blame` is the
   * operation a conflict is reported against).
   */
  private call<T>(what: string, start: (client: zookeeper.Client, done: Done<T>) => void): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`ZooKeeper session is closed (${what})`));
    const c = this.client;
    if (!c || !this.connected) return Promise.reject(new KvUnavailable(`not connected to ZooKeeper (${what})`));
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        reject(new KvUnavailable(`no answer from ZooKeeper within ${this.o.callTimeoutMs} ms (${what})`));
      }, this.o.callTimeoutMs);
      const done: Done<T> = (error, value, blame) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) reject(toStoreError(error, what, blame));
        else resolve(value as T);
      };
      try {
        start(c, done);
      } catch (e) {
        done(e);
      }
    });
  }
}
