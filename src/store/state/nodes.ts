/**
 * Node membership records of ClusterState: /nodes/<node>, an ephemeral node
 * per live plugin process, owned by its store session.
 */
import type { NodeRecord } from '../../model.js';
import { KvConflict } from '../kv-store.js';
import { nodePath } from '../paths.js';
import { NodeSchema, decode } from '../records.js';
import { type StoreAccess, guarded, json } from './store-access.js';

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
}
