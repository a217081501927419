/**
 * Workarounds for node-zookeeper-client 1.1.3 (pinned): the only module that
 * touches the library's internals (the client's `connectionManager` and a
 * Transaction's `ops`), for things its public API cannot do:
 * - drop a dead connection so the library reconnects (same session);
 * - stop a client for good, whatever state it is in;
 * - survive an unknown error code (the library throws from its socket data
 *   handler on codes it does not know);
 * - see whether a session handshake is waiting for its answer, and the last
 *   zxid the client has seen;
 * - keep version 0 in a transaction (its setData/remove/check builders do
 *   `version || -1`, which turns 0 into "any version");
 * - connect over TLS (the library only knows `net.connect`), and tell why a
 *   connection failed (it ignores socket errors and retries silently).
 * Check all of these against the library's source before upgrading it.
 */
/// <reference path="../node-zookeeper-client.d.ts" />
import { isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type zookeeper from 'node-zookeeper-client';
import type { Log } from '../../log.js';
import { describe } from './errors.js';
import type { ZkTls } from './options.js';

/** lib/ConnectionManager.js STATES. */
const CM = { CONNECTING: 1, CLOSED: -2 } as const;

/** Sockets this side closed on purpose: their close is not the server's doing. */
const closedHere = new WeakSet<Socket>();

const destroyHere = (socket: Socket | undefined): void => {
  if (!socket) return;
  closedHere.add(socket);
  socket.destroy();
};

/** Close the current socket; the library reconnects (same session) by itself. */
export const dropConnection = (c: zookeeper.Client): void => {
  const cm = c.connectionManager;
  cm.pendingBuffer = null; // a half-read reply must not be glued to the next connection's bytes
  destroyHere(cm.socket);
};

/**
 * Stop a client for good, whatever its state: the library reconnects from
 * every socket close except in CLOSING/EXPIRED, and close() alone sends
 * closeSession through whatever socket it has.
 */
export const hardStop = (c: zookeeper.Client): void => {
  const cm = c.connectionManager;
  const stopSocket = (): void => {
    if (cm.connectTimeoutHandler) clearTimeout(cm.connectTimeoutHandler);
    cm.connectTimeoutHandler = null;
    destroyHere(cm.socket);
  };
  cm.connect = () => {};
  cm.onSocketConnected = stopSocket; // a connect already under way (spin delay) ends here
  if (cm.state !== CM.CLOSED) cm.setState(CM.CLOSED);
  stopSocket();
};

/** An unknown error code makes the library throw from its socket handler: drop the connection instead of crashing. */
export const guardDataHandler = (c: zookeeper.Client, log: Log): void => {
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

/**
 * The socket of a session handshake under way: TCP is up and the client waits
 * for the server's answer. Undefined otherwise (connected, closed, or TCP
 * still connecting).
 */
export const handshakeSocket = (c: zookeeper.Client): Socket | undefined => {
  const cm = c.connectionManager;
  const socket = cm.socket;
  if (cm.state !== CM.CONNECTING || !socket || socket.connecting || socket.destroyed) return undefined;
  return socket;
};

/** The socket of a TCP connect under way (SYN sent, no answer yet); undefined otherwise. */
export const connectingSocket = (c: zookeeper.Client): Socket | undefined => {
  const cm = c.connectionManager;
  const socket = cm.socket;
  if (cm.state !== CM.CONNECTING || !socket || !socket.connecting || socket.destroyed) return undefined;
  return socket;
};

/**
 * Give up a TCP connect under way; the library connects again by itself. Its
 * connect timer is cleared first: the library clears it only on connect or
 * error, and left running it would destroy whichever socket is current when
 * it fires — the next, perhaps established, connection.
 */
export const abandonConnect = (c: zookeeper.Client): void => {
  const cm = c.connectionManager;
  if (cm.connectTimeoutHandler) clearTimeout(cm.connectTimeoutHandler);
  cm.connectTimeoutHandler = null;
  cm.socket?.destroy();
};

/** A copy of the last zxid the client has seen in a reply (8 bytes, big-endian). */
export const lastSeenZxid = (c: zookeeper.Client): Buffer => Buffer.from(c.connectionManager.zxid);

/** Set the version of the op just added to `tx` to what was asked for: its builder turned 0 into -1. */
export const pinLastOpVersion = (tx: zookeeper.Transaction, version: number): void => {
  const added = tx.ops[tx.ops.length - 1];
  if (added) added.version = version;
};

/**
 * Make the client connect over TLS: lib/ConnectionManager.js connect(), with
 * tls.connect instead of net.connect, and the session handshake started
 * once TLS is up ('secureConnect') instead of on TCP 'connect'. The server's
 * certificate is verified against `tls.ca` and must name the host (DNS name
 * or IP address) of the connect string.
 */
export const connectOverTls = (c: zookeeper.Client, tls: ZkTls): void => {
  const cm = c.connectionManager;
  cm.connect = () => {
    cm.setState(CM.CONNECTING);
    cm.findNextServer((server) => {
      const socket = tlsConnect({
        host: server.host,
        port: server.port,
        ca: tls.ca,
        ...(tls.cert !== undefined && tls.key !== undefined ? { cert: tls.cert, key: tls.key } : {}),
        ...(isIP(server.host) === 0 ? { servername: server.host } : {}),
        rejectUnauthorized: true,
      });
      cm.socket = socket;
      cm.connectTimeoutHandler = setTimeout(cm.onSocketConnectTimeout.bind(cm), cm.connectTimeout);
      socket.setNoDelay();
      socket.on('secureConnect', cm.onSocketConnected.bind(cm));
      socket.on('data', cm.onSocketData.bind(cm));
      socket.on('drain', cm.onSocketDrain.bind(cm));
      socket.on('close', cm.onSocketClosed.bind(cm));
      socket.on('error', cm.onSocketError.bind(cm));
    });
  };
};

/**
 * Report why connections fail: a socket error (refused, TLS verification…),
 * or a connection the server closed before answering the session handshake
 * (what a TLS port does to a plaintext client). The library would retry
 * without a word.
 */
export const reportConnectProblems = (c: zookeeper.Client, report: (problem: string) => void): void => {
  const cm = c.connectionManager;
  const onError = cm.onSocketError.bind(cm);
  cm.onSocketError = (error: Error) => {
    report(describe(error));
    onError(error);
  };
  cm.onSocketConnectTimeout = () => {
    report(`no connection within ${cm.connectTimeout} ms`);
    destroyHere(cm.socket);
  };
  const onClosed = cm.onSocketClosed.bind(cm);
  cm.onSocketClosed = (hasError: boolean) => {
    const socket = cm.socket;
    if (!hasError && cm.state === CM.CONNECTING && socket && !socket.connecting && !closedHere.has(socket)) {
      report('the server closed the connection without answering the session handshake');
    }
    onClosed(hasError);
  };
};
