/**
 * Put the ACL of this session's credentials on every node of an existing
 * tree: the upgrade of a cluster whose store was created without
 * --zk-auth-file (`tsoverlay store secure`). Walks from the chroot node
 * ('/' of the session) down; reads each node's ACL and sets it only where
 * it differs (so a second run changes nothing). A node deleted meanwhile is
 * skipped; a node created meanwhile by a node that already runs with the
 * credentials has the ACL already. setACL changes neither data nor
 * children, so no watch fires and running nodes see nothing.
 */
/// <reference path="../node-zookeeper-client.d.ts" />
import type zookeeper from 'node-zookeeper-client';
import type { Done } from './connection.js';
import { isNoNode } from './errors.js';

/** What the walk needs of the connection (ZkConnection). */
export interface CallingConnection {
  call<T>(what: string, start: (client: zookeeper.Client, done: Done<T>) => void): Promise<T>;
}

export interface SecureResult {
  /** Nodes visited (the chroot node included). */
  nodes: number;
  /** Nodes whose ACL was changed (the others had it already). */
  changed: number;
}

/** Nodes handled at once. */
const BATCH = 16;

const sameAcl = (a: readonly zookeeper.ACL[], b: readonly zookeeper.ACL[]): boolean =>
  a.length === b.length && a.every((x, i) => x.permission === b[i]?.permission && x.id.scheme === b[i]?.id.scheme && x.id.id === b[i]?.id.id);

const childPath = (parent: string, name: string): string => `${parent === '/' ? '' : parent}/${name}`;

/** Set `acl` on every node under '/' (the session's chroot), '/' included. */
export const secureTree = async (conn: CallingConnection, acl: zookeeper.ACL[]): Promise<SecureResult> => {
  const result: SecureResult = { nodes: 0, changed: 0 };

  /** The node's children, after its ACL is set. */
  const visit = async (path: string): Promise<string[]> => {
    const current = await conn.call<zookeeper.ACL[] | null>(`get ACL ${path}`, (c, done) =>
      c.getACL(path, (e, acls) => (isNoNode(e) ? done(null, null) : done(e, acls ?? []))),
    );
    if (current === null) return []; // deleted meanwhile
    result.nodes += 1;
    if (!sameAcl(current, acl)) {
      const set = await conn.call<boolean>(`set ACL ${path}`, (c, done) =>
        c.setACL(path, acl, -1, (e) => (isNoNode(e) ? done(null, false) : done(e, true))),
      );
      if (set) result.changed += 1;
    }
    const names = await conn.call<string[]>(`children ${path}`, (c, done) =>
      c.getChildren(path, undefined, (e, children) => (isNoNode(e) ? done(null, []) : done(e, children ?? []))),
    );
    return names.map((name) => childPath(path, name));
  };

  // level by level (a parent before its children), BATCH nodes at a time
  let level = ['/'];
  while (level.length > 0) {
    const next: string[] = [];
    for (let i = 0; i < level.length; i += BATCH) {
      for (const children of await Promise.all(level.slice(i, i + BATCH).map(visit))) next.push(...children);
    }
    level = next;
  }
  return result;
};
