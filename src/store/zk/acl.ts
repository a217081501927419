/**
 * ZooKeeper digest authentication and the ACL of every znode tsoverlay
 * creates. With credentials, a node's ACL grants ALL (read included: the
 * tree holds keys) to that digest identity only; without, the ZooKeeper
 * default (world: anyone) is kept, as before.
 *
 * A digest identity is `user:base64(sha1("user:password"))`: what the server
 * computes from the `user:password` a client adds with addAuthInfo.
 */
/// <reference path="../node-zookeeper-client.d.ts" />
import { createHash } from 'node:crypto';
import zookeeper from 'node-zookeeper-client';

/** Digest credentials (a secret: never logged). */
export interface ZkAuth {
  user: string;
  password: string;
}

/** The identity ZooKeeper derives from these credentials (not a secret by itself, but keep it out of logs too). */
export const digestId = (auth: ZkAuth): string =>
  `${auth.user}:${createHash('sha1').update(`${auth.user}:${auth.password}`, 'utf8').digest('base64')}`;

/** The ACL of every node created: ALL for the digest identity only; world:anyone without credentials. */
export const nodeAcl = (auth: ZkAuth | undefined): zookeeper.ACL[] =>
  auth ? [new zookeeper.ACL(zookeeper.Permission.ALL, new zookeeper.Id('digest', digestId(auth)))] : zookeeper.ACL.OPEN_ACL_UNSAFE;

/** What addAuthInfo('digest', …) is given. */
export const authPayload = (auth: ZkAuth): Buffer => Buffer.from(`${auth.user}:${auth.password}`, 'utf8');

/** Whether `acls` is exactly the ACL nodeAcl(auth) sets. */
export const isNodeAcl = (acls: readonly zookeeper.ACL[], auth: ZkAuth): boolean =>
  acls.length === 1 &&
  acls[0]?.permission === zookeeper.Permission.ALL &&
  acls[0].id.scheme === 'digest' &&
  acls[0].id.id === digestId(auth);
