/**
 * Liveness of a ZooKeeper connection. The library has no read timeout (a
 * frozen server or a silent network leaves it "connected" forever) and its
 * connect timeout ends when TCP is up, not when the session handshake is
 * answered. A supervisor tick (every 250 ms: heartbeats are timed, not
 * counted, and a short tick notices a silent handshake sooner):
 * - while connected, sends a heartbeat (exists "/") every third of the
 *   session timeout (at least 1 s) and drops the connection (the library then
 *   reconnects, same session) if one stays unanswered for another third;
 * - while a handshake is under way, drops the connection if the server does
 *   not answer it within handshakeDeadlineMs (soon enough to keep a session
 *   being resumed);
 * - while a TCP connect is under way, drops it if it is not up within
 *   CONNECT_STALL_MS and lets the library try again: a SYN lost to a
 *   partition would otherwise wait for the kernel's backoff (1, 3, 7, 15 s)
 *   or the library's connect timeout (session timeout / servers), and a
 *   node would come back seconds after ZooKeeper became reachable again.
 */
/// <reference path="../node-zookeeper-client.d.ts" />
import type { Socket } from 'node:net';
import type zookeeper from 'node-zookeeper-client';
import type { Log } from '../../log.js';
import { abandonConnect, connectingSocket, dropConnection, handshakeSocket } from './library-workarounds.js';
import { NO_SESSION, hex } from './options.js';

/** Supervisor period. */
export const TICK_MS = 250;

/** How long a TCP connect to a server may stay unanswered before it is tried again. */
export const CONNECT_STALL_MS = 1000;

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

/** What the supervisor watches: read on every tick. */
export interface SupervisedConnection {
  /** The current client; undefined between clients. */
  client(): zookeeper.Client | undefined;
  isConnected(): boolean;
  isClosed(): boolean;
  /** Number of servers in the connect string. */
  readonly servers: number;
  readonly log: Log;
}

export class Supervisor {
  private readonly timer: NodeJS.Timeout;
  private heartbeat: { client: zookeeper.Client; sentAt: number } | undefined;
  private lastBeatAt = 0;
  private handshake: { socket: Socket; since: number } | undefined;
  private connect: { socket: Socket; since: number } | undefined;

  /** Starts ticking at once; stop() ends it. */
  constructor(private readonly conn: SupervisedConnection) {
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  /** A session is (again) connected: the next heartbeat is due a third of the timeout from now. */
  sessionUp(): void {
    this.handshake = undefined;
    this.heartbeat = undefined;
    this.lastBeatAt = Date.now();
  }

  /** The connection is gone: an outstanding heartbeat no longer counts. */
  connectionLost(): void {
    this.heartbeat = undefined;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Heartbeat while connected, handshake watchdog while connecting. */
  private tick(): void {
    const c = this.conn.client();
    if (!c || this.conn.isClosed()) return;
    const now = Date.now();
    if (this.conn.isConnected()) {
      this.checkHeartbeat(c, now);
      return;
    }
    this.checkConnect(c, now);
    const socket = handshakeSocket(c);
    if (!socket) {
      this.handshake = undefined;
      return;
    }
    // TCP is up, the session handshake is not answered yet
    const resuming = hex(c.getSessionId()) !== NO_SESSION;
    // the client's timeout: the requested one until a server negotiated it
    const deadline = handshakeDeadlineMs(c.getSessionTimeout(), this.conn.servers, resuming);
    if (this.handshake?.socket !== socket) {
      this.handshake = { socket, since: now };
    } else if (now - this.handshake.since > deadline) {
      this.handshake = undefined;
      this.conn.log.warn({}, 'ZooKeeper server does not answer the session handshake; trying again');
      dropConnection(c);
    }
  }

  /** A TCP connect that stays unanswered (SYNs lost) is tried again after CONNECT_STALL_MS. */
  private checkConnect(c: zookeeper.Client, now: number): void {
    const socket = connectingSocket(c);
    if (!socket) {
      this.connect = undefined;
    } else if (this.connect?.socket !== socket) {
      this.connect = { socket, since: now };
    } else if (now - this.connect.since > CONNECT_STALL_MS) {
      this.connect = undefined;
      this.conn.log.debug({}, 'ZooKeeper server does not answer the TCP connect; trying again');
      abandonConnect(c);
    }
  }

  private checkHeartbeat(c: zookeeper.Client, now: number): void {
    const third = Math.max(1000, Math.floor(c.getSessionTimeout() / 3));
    const hb = this.heartbeat;
    if (hb) {
      if (now - hb.sentAt > third) {
        this.heartbeat = undefined;
        this.conn.log.warn({ waitedMs: now - hb.sentAt }, 'ZooKeeper server does not answer; dropping the connection');
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
  }
}
