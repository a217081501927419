/**
 * ZkConnection: the one owner of the node-zookeeper-client client (style
 * guide §7). It starts the client (resuming a session if given credentials),
 * turns the library's events into session events, replaces an expired
 * client with a new one, keeps the connection alive through a Supervisor
 * (heartbeats, handshake deadline), and runs every call:
 * - Fail fast: a call while not connected rejects at once (nothing is queued
 *   for later), and every call rejects with KvUnavailable after
 *   `callTimeoutMs` whatever the library does. Errors are mapped once
 *   (./errors.ts).
 * - Session events (onSession): 'connected' (a new session: first connect,
 *   or after an expiry), 'disconnected' (connection lost, the session may
 *   live on), 'reconnected' (same session back: ephemeral nodes still there),
 *   'expired' (session gone with its ephemeral nodes; the expired client is
 *   unusable, so it is dropped and a new one started — re-create ephemeral
 *   nodes on the following 'connected'). After 'connected'/'reconnected'
 *   the `afterConnect` hook runs (the watches re-arm there).
 */
/// <reference path="../node-zookeeper-client.d.ts" />
import zookeeper from 'node-zookeeper-client';
import type { Log } from '../../log.js';
import { type KvOp, KvUnavailable } from '../kv-store.js';
import { describe, toStoreError } from './errors.js';
import { authPayload } from './acl.js';
import { connectOverTls, guardDataHandler, hardStop, lastSeenZxid, reportConnectProblems } from './library-workarounds.js';
import { NO_SESSION, type ResolvedOptions, type ZkCredentials, type ZkSessionEvent, hex } from './options.js';
import { Supervisor } from './supervisor.js';

/** Completion of one library call: `blame` is the operation a conflict is reported against. */
export type Done<T> = (error: unknown, value?: T, blame?: KvOp) => void;

export class ZkConnection {
  private client: zookeeper.Client | undefined;
  private connected = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly sessionListeners = new Set<(event: ZkSessionEvent) => void>();
  private readonly supervisor: Supervisor;
  /** Credentials for the next client only (session resumption). */
  private resume: ZkCredentials | undefined;
  /** Why the last connection attempt failed (undefined once connected). */
  private problem: string | undefined;

  /** No client yet (start() makes one); the supervisor ticks from now on. */
  constructor(
    private readonly o: ResolvedOptions,
    private readonly chroot: string,
    private readonly log: Log,
    private readonly afterConnect: () => void,
  ) {
    this.supervisor = new Supervisor({
      client: () => this.client,
      isConnected: () => this.connected,
      isClosed: () => this.closed,
      servers: o.servers.length,
      log,
    });
  }

  /** Start the first client; with `resume`, it asks for that session. */
  start(resume?: ZkCredentials): void {
    this.resume = resume;
    this.startClient();
  }

  isConnected(): boolean {
    return this.connected;
  }

  /** Why the last connection attempt failed, if one did since the last connect: for the error of a failed open(). */
  lastProblem(): string | undefined {
    return this.problem;
  }

  isClosed(): boolean {
    return this.closed;
  }

  /**
   * The current session's id, 16 hex digits, as in ZkNode.ephemeralOwner. Kept
   * while disconnected (the session may live on); all zeros (never an owner)
   * before the first session and between an expiry and the next 'connected'.
   */
  sessionId(): string {
    return this.client ? hex(this.client.getSessionId()) : NO_SESSION;
  }

  /** The current session's credentials, to resume it from another process; undefined without a session. */
  credentials(): ZkCredentials | undefined {
    const c = this.client;
    if (!c || this.sessionId() === NO_SESSION) return undefined;
    return { id: hex(c.getSessionId()), password: c.getSessionPassword().toString('hex') };
  }

  /** The last zxid the current client has seen; undefined without a client. */
  lastZxid(): Buffer | undefined {
    return this.client ? lastSeenZxid(this.client) : undefined;
  }

  /** Listen to session events; returns unsubscribe. */
  onSession(listener: (event: ZkSessionEvent) => void): () => void {
    this.sessionListeners.add(listener);
    return () => {
      this.sessionListeners.delete(listener);
    };
  }

  /**
   * Run one library call: fail fast when not connected, reject with
   * KvUnavailable after the deadline, map errors once (`blame` is the
   * operation a conflict is reported against).
   */
  call<T>(what: string, start: (client: zookeeper.Client, done: Done<T>) => void): Promise<T> {
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

  /** Drop the connection without ending the session (see ZkSession.detach). */
  detach(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.connected = false;
    this.supervisor.stop();
    this.sessionListeners.clear();
    const c = this.client;
    this.client = undefined;
    if (c) hardStop(c);
    this.closing = Promise.resolve();
    return this.closing;
  }

  /** End the session (its ephemeral nodes go away) and stop every timer. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    const wasConnected = this.connected;
    this.connected = false;
    this.supervisor.stop();
    this.sessionListeners.clear();
    const c = this.client;
    this.client = undefined;
    this.closing = c ? this.shutdown(c, wasConnected) : Promise.resolve();
    return this.closing;
  }

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
    if (this.o.tls) connectOverTls(c, this.o.tls);
    reportConnectProblems(c, (problem) => this.connectProblem(c, problem));
    if (this.o.auth) c.addAuthInfo('digest', authPayload(this.o.auth)); // sent again on every connection
    this.client = c;
    let sessionUp = false;
    c.on('connected', () => {
      if (c !== this.client || this.closed) return;
      const event: ZkSessionEvent = sessionUp ? 'reconnected' : 'connected';
      sessionUp = true;
      this.connected = true;
      this.problem = undefined;
      this.supervisor.sessionUp();
      this.log.info(
        { sessionId: hex(c.getSessionId()), sessionTimeoutMs: c.getSessionTimeout(), chroot: this.chroot || '/' },
        event === 'connected' ? 'ZooKeeper session established' : 'ZooKeeper connection restored',
      );
      this.emit(event);
      this.afterConnect();
    });
    c.on('disconnected', () => {
      if (c !== this.client || this.closed || !this.connected) return;
      this.connected = false;
      this.supervisor.connectionLost();
      this.log.warn({ sessionId: hex(c.getSessionId()) }, 'ZooKeeper connection lost; reconnecting');
      this.emit('disconnected');
    });
    c.on('expired', () => {
      if (c !== this.client || this.closed) return;
      this.connected = false;
      this.supervisor.connectionLost();
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

  /** A failed connection attempt: logged when its reason changes (the library retries every spin delay). */
  private connectProblem(c: zookeeper.Client, problem: string): void {
    if (c !== this.client || this.closed) return;
    if (problem !== this.problem) this.log.warn({ servers: this.o.servers.join(','), tls: Boolean(this.o.tls), err: problem }, 'cannot connect to ZooKeeper');
    this.problem = problem;
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
}
