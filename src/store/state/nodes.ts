/**
 * Node membership records of ClusterState: /nodes/<node>, an ephemeral node
 * per live plugin process, owned by its store session; and /gone/<node>,
 * when a node without membership was first seen gone (`tsoverlay status`;
 * written by the collector-lock holder, cluster/collector.ts):
 * - written only while /nodes/<node> is absent (the same commit checks it),
 *   and only if there is none (the time is never moved forward);
 * - removed by the node when it registers again, and by the collector when
 *   it sees the node live or nothing names it any more.
 */
import type { NodeRecord } from '../../model.js';
import { KvConflict, type KvOp } from '../kv-store.js';
import { GONE, gonePath, nodePath } from '../paths.js';
import { type GoneRecord, GoneSchema, NodeSchema, decode } from '../records.js';
import { type StoreAccess, guarded, json } from './store-access.js';

/**
 * Ops that fail unless /nodes/<node> is absent, and change nothing else
 * (ZooKeeper has no "check absent" op: create it and delete it again).
 */
export const absentNode = (node: string): KvOp[] => [
  { type: 'create', path: nodePath(node), data: '' },
  { type: 'delete', path: nodePath(node), version: 0 },
];

export class NodeState {
  constructor(private readonly s: StoreAccess) {}

  /** Register this node as alive (an ephemeral node); KvConflict 'exists' if taken. */
  async registerNode(rec: NodeRecord): Promise<void> {
    await guarded(() => this.s.kv.createEphemeral(nodePath(rec.node), json(rec)));
  }

  /** Who holds a node name: undefined, this session, or another live session. */
  async nodeHolder(node: string): Promise<{ rec: NodeRecord; mine: boolean; version: number } | undefined> {
    const o = await guarded(() => this.s.kv.getOwner(nodePath(node)));
    if (!o) return undefined;
    return { rec: decode(NodeSchema, o.data, nodePath(node)) as NodeRecord, mine: o.ephemeralOwner === this.s.kv.sessionId(), version: o.version };
  }

  /**
   * Rewrite this session's own node record (a resumed session keeps the
   * ephemeral node of the previous process: its address, port or version may
   * be stale). False if it changed or went away meanwhile.
   */
  async rewriteNode(rec: NodeRecord, version: number): Promise<boolean> {
    try {
      await guarded(() => this.s.kv.commit([{ type: 'set', path: nodePath(rec.node), data: json(rec), version }]));
      return true;
    } catch (e) {
      if (e instanceof KvConflict) return false;
      throw e;
    }
  }

  async listNodes(): Promise<NodeRecord[]> {
    const names = await guarded(() => this.s.kv.children('/nodes'));
    const paths = names.map((n) => nodePath(n));
    return (await this.s.readAll(NodeSchema, paths)) as NodeRecord[];
  }

  /** Names under /gone, read bare (a record that does not decode is still there: not written again, still removable). */
  goneNames(): Promise<string[]> {
    return guarded(() => this.s.kv.children(GONE));
  }

  /** The /gone records that decode (others are skipped and reported, never fatal). */
  async listGone(): Promise<GoneRecord[]> {
    const names = await this.goneNames();
    return (await this.s.readAll(GoneSchema, names.map((n) => gonePath(n)))) as GoneRecord[];
  }

  /**
   * Record that `rec.node` is gone, if no record says so yet and the node
   * still has no membership at commit time. True if written.
   */
  async markGone(rec: GoneRecord): Promise<boolean> {
    try {
      await guarded(() => this.s.kv.commit([...absentNode(rec.node), { type: 'create', path: gonePath(rec.node), data: json(rec) }]));
      return true;
    } catch (e) {
      if (e instanceof KvConflict && e.reason === 'exists') return false; // live, or already recorded
      throw e;
    }
  }

  /** Forget that a node was gone (it is live, or nothing names it). False if there was no record. */
  async clearGone(node: string): Promise<boolean> {
    try {
      await guarded(() => this.s.kv.commit([{ type: 'delete', path: gonePath(node), version: -1 }]));
      return true;
    } catch (e) {
      if (e instanceof KvConflict && e.reason === 'missing') return false;
      throw e;
    }
  }
}
