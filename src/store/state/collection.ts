/**
 * Store writes of garbage collection (cluster/collector.ts): the records a
 * gone node or a vanished endpoint left behind, removed in commits that
 * check the evidence they rest on.
 * - A gone node's records go only while /nodes/<node> is still absent: each
 *   commit creates and deletes that path (ZooKeeper has no "check absent"
 *   op), so a node that registers again first makes the commit fail and
 *   keeps everything.
 * - Only `kind: endpoint` address claims of the owner are released; the
 *   gateway is the network's and stays.
 * - A node's last alias of a network and its place as a pool's last user
 *   are kept: removing them would remove the network (a decision only
 *   Docker makes).
 * - The lock (/collector, ephemeral) makes one live node the collector.
 */
import type { AddressRecord, EndpointRecord, NetworkRecord, PoolRecord } from '../../model.js';
import { KvConflict, type KvOp } from '../kv-store.js';
import { COLLECTOR_LOCK, POOLS, addressPath, dnsNamePath, endpointPath, netidPath, networkPath, nodePath, poolPath } from '../paths.js';
import { AddressSchema, NetworkSchema, PoolSchema, decode } from '../records.js';
import type { Schema } from '../../util/schema.js';
import { absentNode } from './nodes.js';
import { type StoreAccess, guarded, json } from './store-access.js';

/** An address claim to release with an endpoint: the pool it is in and the bare IP. */
export interface HeldAddress {
  poolId: string;
  ip: string;
}

/** Endpoints removed in one commit at most (ZooKeeper bounds a request's size). */
const BATCH = 40;

/** The node came back: a guard op on its membership path failed. */
const cameBack = (e: unknown, node: string | undefined): boolean =>
  node !== undefined && e instanceof KvConflict && e.op.path === nodePath(node) && e.reason === 'exists';

export class CollectionState {
  constructor(private readonly s: StoreAccess) {}

  /**
   * Hold the collector lock (an ephemeral node of this session). True if this
   * session holds it, now or already.
   */
  async holdLock(node: string): Promise<boolean> {
    try {
      await guarded(() => this.s.kv.createEphemeral(COLLECTOR_LOCK, json({ node })));
      return true;
    } catch (e) {
      if (!(e instanceof KvConflict && e.reason === 'exists')) throw e;
    }
    const o = await guarded(() => this.s.kv.getOwner(COLLECTOR_LOCK));
    return o !== undefined && o.ephemeralOwner === this.s.kv.sessionId() && o.ephemeralOwner !== '';
  }

  /**
   * Names under /nodes: the live nodes. Read bare, not decoded: a live node
   * with an unreadable record is still live.
   */
  liveNodes(): Promise<string[]> {
    return guarded(() => this.s.kv.children('/nodes'));
  }

  /** Pools whose records decode (an unreadable pool is left alone). */
  async readablePools(): Promise<PoolRecord[]> {
    const ids = await guarded(() => this.s.kv.children(POOLS));
    return (await this.s.readAll(PoolSchema, ids.map((id) => poolPath(id)))) as PoolRecord[];
  }

  /** The address claims of a pool, decoded (unreadable ones are skipped). */
  async addresses(poolId: string): Promise<AddressRecord[]> {
    const ips = await guarded(() => this.s.kv.children(poolPath(poolId)));
    return (await this.s.readAll(AddressSchema, ips.map((ip) => addressPath(poolId, ip)))) as AddressRecord[];
  }

  /**
   * Remove endpoints with their names, and address claims of `owner`, in
   * commits of a few endpoints each. With `goneNode`, every commit also
   * requires that node to be absent. Returns false if the node came back
   * (what was committed before stays removed: it was gone then).
   */
  async removeEndpoints(endpoints: readonly EndpointRecord[], claims: readonly HeldAddress[], owner: string, goneNode?: string): Promise<boolean> {
    const guard = goneNode ? absentNode(goneNode) : [];
    const eps = [...endpoints];
    let rest = [...claims];
    while (eps.length > 0 || rest.length > 0) {
      const batch = eps.splice(0, BATCH);
      const ops: KvOp[] = [];
      for (const ep of batch) {
        ops.push({ type: 'delete', path: endpointPath(ep.networkId, ep.id), version: -1 });
        if (await guarded(() => this.s.kv.get(dnsNamePath(ep.networkId, ep.id)))) {
          ops.push({ type: 'delete', path: dnsNamePath(ep.networkId, ep.id), version: -1 });
        }
      }
      const now = batch.length > 0 ? rest.filter((c) => batch.some((ep) => sameIp(ep, c.ip))) : rest.splice(0, BATCH);
      if (batch.length > 0) rest = rest.filter((c) => !now.includes(c));
      for (const c of now) {
        const v = await guarded(() => this.s.kv.get(addressPath(c.poolId, c.ip)));
        const rec = v ? readable(AddressSchema, v.data, addressPath(c.poolId, c.ip)) : undefined;
        if (v && rec?.node === owner && rec.kind === 'endpoint') ops.push({ type: 'delete', path: addressPath(c.poolId, c.ip), version: v.version });
      }
      if (ops.length === 0) continue;
      try {
        await this.commitDeletes([...guard, ...ops]);
      } catch (e) {
        if (cameBack(e, goneNode)) return false;
        throw e;
      }
    }
    return true;
  }

  /**
   * Drop a gone node from a pool's users, unless it is the last one.
   * 'kept-last' if it is, 'back' if the node came back, else whether it changed.
   */
  async dropPoolUser(pool: PoolRecord, node: string): Promise<'dropped' | 'absent' | 'kept-last' | 'back'> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const v = await guarded(() => this.s.kv.get(poolPath(pool.id)));
      if (!v) return 'absent';
      const cur = readable(PoolSchema, v.data, poolPath(pool.id)) as PoolRecord | undefined;
      if (!cur || !cur.users.includes(node)) return 'absent';
      const users = cur.users.filter((u) => u !== node);
      if (users.length === 0) return 'kept-last';
      try {
        await guarded(() => this.s.kv.commit([...absentNode(node), { type: 'set', path: poolPath(pool.id), data: json({ ...cur, users }), version: v.version }]));
        return 'dropped';
      } catch (e) {
        if (cameBack(e, node)) return 'back';
        if (!(e instanceof KvConflict)) throw e;
      }
    }
    return 'absent';
  }

  /**
   * Drop a gone node's engine aliases of a network (and their /netids),
   * unless no alias would be left. Returns the aliases dropped, 'kept-last'
   * or 'back' (the node came back).
   */
  async dropAliases(key: string, node: string): Promise<string[] | 'kept-last' | 'back'> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const v = await guarded(() => this.s.kv.get(networkPath(key)));
      if (!v) return [];
      const cur = readable(NetworkSchema, v.data, networkPath(key)) as NetworkRecord | undefined;
      if (!cur) return [];
      const gone = Object.keys(cur.aliases).filter((id) => cur.aliases[id] === node);
      if (gone.length === 0) return [];
      const aliases = Object.fromEntries(Object.entries(cur.aliases).filter(([, n]) => n !== node));
      if (Object.keys(aliases).length === 0) return 'kept-last';
      const netids: KvOp[] = [];
      for (const id of gone) {
        if (await guarded(() => this.s.kv.get(netidPath(id)))) netids.push({ type: 'delete', path: netidPath(id), version: -1 });
      }
      try {
        await guarded(() =>
          this.s.kv.commit([...absentNode(node), { type: 'set', path: networkPath(key), data: json({ ...cur, aliases }), version: v.version }, ...netids]),
        );
        return gone;
      } catch (e) {
        if (cameBack(e, node)) return 'back';
        if (!(e instanceof KvConflict)) throw e;
      }
    }
    return [];
  }

  /** Deletes, dropping those whose node another writer removed first (the guard ops are kept). */
  private async commitDeletes(ops: KvOp[]): Promise<void> {
    let pending = ops;
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        await guarded(() => this.s.kv.commit(pending));
        return;
      } catch (e) {
        const isGuard = e instanceof KvConflict && e.op.path.startsWith('/nodes/');
        if (!(e instanceof KvConflict) || isGuard || e.op.type !== 'delete' || (e.reason !== 'missing' && e.reason !== 'version')) throw e;
        const failed = e.op;
        pending = pending.filter((op) => op !== failed);
        if (!pending.some((op) => op.type === 'delete' && !op.path.startsWith('/nodes/'))) return;
      }
    }
  }
}

const sameIp = (ep: EndpointRecord, ip: string): boolean => ep.ipv4?.split('/')[0] === ip || ep.ipv6?.split('/')[0] === ip;

/** A record, or undefined if it does not decode (left alone: collection never acts on what it cannot read). */
const readable = <T>(schema: Schema<T>, text: string, where: string): T | undefined => {
  try {
    return decode(schema, text, where);
  } catch {
    return undefined;
  }
};
