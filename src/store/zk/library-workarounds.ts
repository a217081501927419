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
 *   `version || -1`, which turns 0 into "any version").
 * Check all of these against the library's source before upgrading it.
 */
/// <reference path="../node-zookeeper-client.d.ts" />
import type { Socket } from 'node:net';
import type zookeeper from 'node-zookeeper-client';
import type { Log } from '../../log.js';
import { describe } from './errors.js';

/** lib/ConnectionManager.js STATES. */
const CM = { CONNECTING: 1, CLOSED: -2 } as const;

/** Close the current socket; the library reconnects (same session) by itself. */
export const dropConnection = (c: zookeeper.Client): void => {
  const cm = c.connectionManager;
  cm.pendingBuffer = null; // a half-read reply must not be glued to the next connection's bytes
  cm.socket?.destroy();
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
    cm.socket?.destroy();
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

/** A copy of the last zxid the client has seen in a reply (8 bytes, big-endian). */
export const lastSeenZxid = (c: zookeeper.Client): Buffer => Buffer.from(c.connectionManager.zxid);

/** Set the version of the op just added to `tx` to what was asked for: its builder turned 0 into -1. */
export const pinLastOpVersion = (tx: zookeeper.Transaction, version: number): void => {
  const added = tx.ops[tx.ops.length - 1];
  if (added) added.version = version;
};
