/**
 * ZkSession's options and the values it hands out: the options as given and
 * as resolved (defaults filled in, checked once in open()), session
 * credentials, and the id format shared by sessionId() and node owners.
 */
/// <reference path="../node-zookeeper-client.d.ts" />
import type zookeeper from 'node-zookeeper-client';
import type { Log } from '../../log.js';
import type { EphemeralOwner, SessionEvent } from '../kv-store.js';
import { type ZkAuth, nodeAcl } from './acl.js';

export type { ZkAuth } from './acl.js';

export type ZkSessionEvent = SessionEvent;

export type WatchKind = 'children' | 'data' | 'both';

export interface ZkSessionOptions {
  /** "host:port" each (IPv6 literals are not supported by the library). */
  servers: string[];
  /** Absolute path all other paths are relative to, e.g. "/tsoverlay"; created if missing. */
  chroot: string;
  /** False: leave a missing chroot missing (a read-only client: `tsoverlay status`); every read then finds nothing. */
  createChroot?: boolean;
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
  /**
   * Digest credentials: added to every connection, and every node created
   * (the chroot included) gets an ACL giving only this identity access.
   */
  auth?: ZkAuth;
  /** Connect over TLS (ZooKeeper's secureClientPort), verifying the server against `ca`. */
  tls?: ZkTls;
}

/** TLS to ZooKeeper: PEM contents. The server's certificate must be signed by `ca` and name the host (or IP) connected to. */
export interface ZkTls {
  ca: string;
  /** Client certificate and its key, for servers that ask for one. */
  cert?: string;
  key?: string;
}

/** Session id and password (hex): a secret, never logged. */
export interface ZkCredentials {
  id: string;
  password: string;
}

/** A node with its owner: `ephemeralOwner` is the owning session's id (as sessionId()), '' for a persistent node. */
export type ZkNode = EphemeralOwner;

/** The options with every default filled in. */
export interface ResolvedOptions {
  servers: string[];
  sessionTimeoutMs: number;
  connectTimeoutMs: number;
  callTimeoutMs: number;
  watchKind: (path: string) => WatchKind;
  auth: ZkAuth | undefined;
  /** The ACL of every node created (world:anyone without auth). */
  acl: zookeeper.ACL[];
  tls: ZkTls | undefined;
}

/** sessionId() without a session: never an owner. */
export const NO_SESSION = '0000000000000000';

/** A session id (or zxid) as 16 hex digits. */
export const hex = (b: Buffer): string => b.toString('hex').padStart(16, '0');

/** Same rules as the library's Path.validate, but throws a plain Error. */
export const validatePath = (path: string): void => {
  if (path === '/') return;
  if (!path.startsWith('/') || path.endsWith('/') || path.slice(1).split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`invalid ZooKeeper path "${path}"`);
  }
};

/** Fill in the defaults and check servers and chroot; throws a plain Error on bad options. */
export const resolveOptions = (opts: ZkSessionOptions): ResolvedOptions => {
  const o: ResolvedOptions = {
    servers: [...opts.servers],
    sessionTimeoutMs: opts.sessionTimeoutMs ?? 10_000,
    connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
    callTimeoutMs: opts.callTimeoutMs ?? 5_000,
    watchKind: opts.watchKind ?? (() => 'both'),
    auth: opts.auth,
    acl: nodeAcl(opts.auth),
    tls: opts.tls,
  };
  if (o.tls && (o.tls.cert === undefined) !== (o.tls.key === undefined)) throw new Error('a ZooKeeper TLS client certificate needs its key, and a key its certificate');
  if (o.servers.length === 0) throw new Error('no ZooKeeper servers given');
  for (const s of o.servers) {
    if (!/^[^\s,/:]+:\d{1,5}$/.test(s)) throw new Error(`ZooKeeper server "${s}" is not host:port (IPv6 literals are not supported)`);
  }
  validatePath(opts.chroot);
  if (opts.chroot === '/') throw new Error('the ZooKeeper chroot must not be "/"');
  return o;
};

const isHex = (s: string, bytes: number): boolean => new RegExp(`^[0-9a-f]{${bytes * 2}}$`).test(s);

/** Credentials worth trying to resume (8-byte id, 16-byte password); anything malformed is ignored. */
export const usableCredentials = (c: ZkCredentials | undefined): ZkCredentials | undefined =>
  c && isHex(c.id, 8) && isHex(c.password, 16) ? c : undefined;
