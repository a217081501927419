/**
 * ZkWatches: ZooKeeper watches made to behave like the KvStore port's.
 * - Watches are one-shot in ZooKeeper: each watched path is re-armed
 *   (getData and/or getChildren, as `watchKind` says, or exists while the
 *   node is missing) every time it fires, and listeners stay registered
 *   until unsubscribed. After a reconnect or a new session every watch is
 *   re-armed (rearmAll) and every listener fires once, because anything may
 *   have changed meanwhile.
 * - A ZooKeeper watch starts when the server reads the node, not when
 *   watch() is called; another client's change in between would go
 *   unreported. So the first arming compares the node's mzxid/pzxid (its
 *   parent's pzxid if it is gone) with the last zxid this client had seen
 *   when watch() was called, and fires if anything is newer: like the
 *   memory store, every change after watch() is reported (rarely one more).
 * - Arming and re-arming of one path never overlap: a request to refresh
 *   while one runs is coalesced into one more round.
 */
/// <reference path="../node-zookeeper-client.d.ts" />
import type zookeeper from 'node-zookeeper-client';
import type { Log } from '../../log.js';
import { KvUnavailable, parentOf } from '../kv-store.js';
import type { Done } from './connection.js';
import { describe, isNoNode } from './errors.js';
import { type WatchKind, validatePath } from './options.js';

/** What the watches need of the connection (ZkConnection). */
export interface WatchedConnection {
  isConnected(): boolean;
  isClosed(): boolean;
  lastZxid(): Buffer | undefined;
  call<T>(what: string, start: (client: zookeeper.Client, done: Done<T>) => void): Promise<T>;
}

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

/** zxids are positive 64-bit big-endian numbers. */
const newer = (zxid: Buffer, than: Buffer): boolean => Buffer.compare(zxid, than) > 0;

export class ZkWatches {
  private readonly watches = new Map<string, WatchEntry>();

  constructor(
    private readonly conn: WatchedConnection,
    private readonly watchKind: (path: string) => WatchKind,
    private readonly log: Log,
  ) {}

  /** Call `listener` after changes of the node's data or its set of children; returns unsubscribe. */
  watch(path: string, listener: () => void): () => void {
    validatePath(path);
    if (this.conn.isClosed()) return () => {};
    let entry = this.watches.get(path);
    if (!entry) {
      const created: WatchEntry = {
        path,
        listeners: new Set(),
        notify: () => {
          if (this.isLive(created)) this.refresh(created, true);
        },
        since: this.conn.lastZxid(),
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

  /** After a (re)connect: re-arm every watch and fire its listeners. */
  rearmAll(): void {
    for (const entry of this.watches.values()) this.refresh(entry, true);
  }

  /** Forget every watch (the session is closing). */
  clear(): void {
    this.watches.clear();
  }

  private isLive(entry: WatchEntry): boolean {
    return !this.conn.isClosed() && this.watches.get(entry.path) === entry;
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
    if (!this.conn.isConnected()) return 'unchanged'; // every watch is re-armed on (re)connect
    const what = `watch ${path}`;
    const read = (e: unknown, stat: zookeeper.Stat | null | undefined, done: Done<zookeeper.Stat | null>): void => {
      if (isNoNode(e)) done(null, null);
      else if (e) done(e);
      else done(null, stat ?? null);
    };
    const kind = this.watchKind(path);
    const call = <T>(start: (client: zookeeper.Client, done: Done<T>) => void): Promise<T> => this.conn.call(what, start);
    try {
      // the requests go out now, before anything the caller sends next
      const stats = await Promise.all([
        ...(kind === 'children'
          ? []
          : [call<zookeeper.Stat | null>((c, done) => c.getData(path, notify, (e, _data, st) => read(e, st, done)))]),
        ...(kind === 'data'
          ? []
          : [call<zookeeper.Stat | null>((c, done) => c.getChildren(path, notify, (e, _children, st) => read(e, st, done)))]),
      ]);
      if (stats[0]) {
        // two reads may straddle another client's change: look at both stats
        const changed = since !== undefined && stats.some((st) => st && (newer(st.mzxid, since) || newer(st.pzxid, since)));
        return changed ? 'changed' : 'unchanged';
      }
      const appeared = await call<boolean>((c, done) => c.exists(path, notify, (e, st) => done(e, Boolean(st))));
      if (appeared) return 'appeared';
      if (since === undefined || path === '/') return 'unchanged';
      // missing: deleted since watch() was called if its parent's children changed since
      const parent = await call<zookeeper.Stat | null>((c, done) => c.exists(parentOf(path), undefined, (e, st) => read(e, st, done)));
      return parent !== null && newer(parent.pzxid, since) ? 'changed' : 'unchanged';
    } catch (e) {
      if (this.conn.isClosed()) return 'unchanged';
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
}
