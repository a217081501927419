/**
 * ZooKeeper error mapping: the only place ZooKeeper result codes are
 * interpreted. Everything above ZkSession sees only the port's errors:
 *   NO_NODE → KvConflict 'missing', NODE_EXISTS → 'exists', BAD_VERSION →
 *   'version', NOT_EMPTY → 'not-empty' (blamed on the operation that failed);
 *   CONNECTION_LOSS, SESSION_EXPIRED, OPERATION_TIMEOUT → KvUnavailable;
 *   NO_AUTH → ZkAccessDenied (the node's ACL refuses this client);
 *   anything else → a plain Error naming the call.
 */
/// <reference path="../node-zookeeper-client.d.ts" />
import zookeeper from 'node-zookeeper-client';
import { KvConflict, type KvConflictReason, type KvOp, KvUnavailable } from '../kv-store.js';

const { Exception: Code } = zookeeper;

const CONFLICTS = new Map<number, KvConflictReason>([
  [Code.NO_NODE, 'missing'],
  [Code.NODE_EXISTS, 'exists'],
  [Code.BAD_VERSION, 'version'],
  [Code.NOT_EMPTY, 'not-empty'],
]);
const UNAVAILABLE = new Set<number>([Code.CONNECTION_LOSS, Code.SESSION_EXPIRED, Code.OPERATION_TIMEOUT]);

/** ZooKeeper refused a read or write: the client lacks the credentials the node's ACL names. */
export class ZkAccessDenied extends Error {
  override readonly name = 'ZkAccessDenied';
}

/** The ZooKeeper code of a library error, undefined for anything else. */
export const zkCode = (e: unknown): number | undefined =>
  typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'number' ? e.code : undefined;

/** The node does not exist (reads treat this as "absent", not as a failure). */
export const isNoNode = (e: unknown): boolean => zkCode(e) === Code.NO_NODE;

/** A message for logs, whatever was thrown. */
export const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Map a library error of the call `what`; a conflict is reported against `blame`. */
export const toStoreError = (e: unknown, what: string, blame: KvOp | undefined): Error => {
  const code = zkCode(e);
  if (code === undefined) return new Error(`${what}: ${describe(e)}`, { cause: e });
  const name = e instanceof Error ? e.name : String(code);
  if (UNAVAILABLE.has(code)) return new KvUnavailable(`ZooKeeper ${name} during ${what}`, { cause: e });
  if (code === Code.NO_AUTH) {
    const target = blame ? `${blame.path} (${what})` : `${what.replace(/^\w+ /, '')} (${what})`;
    return new ZkAccessDenied(`ZooKeeper refused access to ${target}: check --zk-auth-file (the credentials the tree is secured with)`, { cause: e });
  }
  const reason = CONFLICTS.get(code);
  if (reason !== undefined && blame) return new KvConflict(blame, reason);
  return new Error(`ZooKeeper ${name} during ${what}`, { cause: e });
};

/**
 * The operation a failed multi is blamed on. Ops before the failing one
 * report OK, the ones after RUNTIME_INCONSISTENCY; a lone op is its own
 * culprit even without results.
 */
export const failedOp = (
  ops: readonly KvOp[],
  results: readonly zookeeper.TransactionResult[] | undefined,
): KvOp | undefined => {
  const i = (results ?? []).findIndex((r) => r.err !== undefined && r.err !== Code.OK && r.err !== Code.RUNTIME_INCONSISTENCY);
  return ops[i] ?? (ops.length === 1 ? ops[0] : undefined);
};
