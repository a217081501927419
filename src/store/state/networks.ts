/**
 * Network records of ClusterState: /networks/<key>, the engines' aliases
 * (/netids/<engineNetworkId>) and the VNI claims (/vnis/<vni>).
 * - A VNI is claimed by creating /vnis/<vni> in the same commit as the
 *   network record, so two networks never share one.
 * - Aliases and flags change by compare-and-set of the record, retried on
 *   conflicts; removing the last alias removes the network with its
 *   endpoints, its published names and its VNI claim, in one commit.
 */
import { TsoverlayError } from '../../errors.js';
import type { NetworkRecord, TombstoneRecord } from '../../model.js';
import { KvConflict, type KvOp } from '../kv-store.js';
import { TOMBSTONES, dnsNamePath, dnsNamesDir, endpointPath, endpointsDir, netidPath, networkPath, tombstonePath, vniPath } from '../paths.js';
import { AliasSchema, NetworkSchema, TombstoneSchema, decode } from '../records.js';
import { type StoreAccess, guarded, json } from './store-access.js';

export class NetworkState {
  private readonly aliasCache = new Map<string, string>();

  constructor(private readonly s: StoreAccess) {}

  async getNetwork(key: string): Promise<NetworkRecord | undefined> {
    return (await this.getNetworkVersioned(key))?.value;
  }

  async getNetworkVersioned(key: string): Promise<{ value: NetworkRecord; version: number } | undefined> {
    const v = await guarded(() => this.s.kv.get(networkPath(key)));
    return v ? { value: this.s.decodeOnce(NetworkSchema, v, networkPath(key)) as NetworkRecord, version: v.version } : undefined;
  }

  async listNetworks(): Promise<NetworkRecord[]> {
    const ids = await guarded(() => this.s.kv.children('/networks'));
    const paths = ids.map((id) => networkPath(id));
    return (await this.s.readAll(NetworkSchema, paths)) as NetworkRecord[];
  }

  /** The cluster network an engine's network id stands for (cached: it never changes). */
  async resolveNetwork(engineNetworkId: string): Promise<string | undefined> {
    const hit = this.aliasCache.get(engineNetworkId);
    if (hit) return hit;
    const v = await guarded(() => this.s.kv.get(netidPath(engineNetworkId)));
    if (!v) return undefined;
    const alias = decode(AliasSchema, v.data, netidPath(engineNetworkId));
    this.aliasCache.set(engineNetworkId, alias.network);
    return alias.network;
  }

  /**
   * Hold the VNI of a device this node keeps without a network in the store
   * (a wiped or adopted store, a missing record): no new network may take it,
   * or its containers would share the kept network's wire. True if claimed
   * now, false if it was claimed already.
   */
  async holdKeptVni(vni: number, node: string): Promise<boolean> {
    try {
      await guarded(() => this.s.kv.commit([{ type: 'create', path: vniPath(vni), data: `kept-by:${node}` }]));
      return true;
    } catch (e) {
      if (e instanceof KvConflict && e.reason === 'exists') return false;
      throw e;
    }
  }

  async usedVnis(): Promise<Set<number>> {
    const names = await guarded(() => this.s.kv.children('/vnis'));
    return new Set(names.map(Number).filter(Number.isInteger));
  }

  /**
   * Store a new cluster network with its first alias and claim its VNI, in
   * one commit. Throws VNI_IN_USE if another network holds the VNI and
   * STORE_CONFLICT if the key was taken meanwhile (the caller re-reads).
   */
  async createNetwork(rec: NetworkRecord, engineNetworkId: string, node: string): Promise<void> {
    const ops: KvOp[] = [
      { type: 'create', path: vniPath(rec.vni), data: rec.id },
      { type: 'create', path: networkPath(rec.id), data: json(rec) },
      { type: 'create', path: endpointsDir(rec.id), data: '' },
      { type: 'create', path: dnsNamesDir(rec.id), data: '' },
      { type: 'create', path: netidPath(engineNetworkId), data: json({ network: rec.id, node }) },
    ];
    try {
      await guarded(() => this.s.kv.commit(ops));
    } catch (e) {
      if (!(e instanceof KvConflict)) throw e;
      if (e.op.path === vniPath(rec.vni)) {
        throw new TsoverlayError('VNI_IN_USE', `VNI ${rec.vni} is already used by another tsoverlay network`);
      }
      throw new TsoverlayError('STORE_CONFLICT', `network ${rec.id} changed while it was being created; try again`, { cause: e });
    }
  }

  /**
   * Read-modify-write of a network record with compare-and-set, retried on
   * conflicts. `change` returns the new record, or undefined to leave it.
   * Extra ops (e.g. an alias create) commit atomically with the write.
   */
  async updateNetwork(
    key: string,
    change: (n: NetworkRecord) => { next: NetworkRecord; ops?: KvOp[] } | undefined,
  ): Promise<NetworkRecord | undefined> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const cur = await this.getNetworkVersioned(key);
      if (!cur) return undefined;
      const r = change(cur.value);
      if (!r) return cur.value;
      try {
        await guarded(() =>
          this.s.kv.commit([{ type: 'set', path: networkPath(key), data: json(r.next), version: cur.version }, ...(r.ops ?? [])]),
        );
        return r.next;
      } catch (e) {
        if (!(e instanceof KvConflict)) throw e;
        if (e.op.path !== networkPath(key)) {
          throw new TsoverlayError('STORE_CONFLICT', `could not update network ${key}: ${e.message}`, { cause: e });
        }
      }
    }
    throw new TsoverlayError('STORE_CONFLICT', `network ${key} kept changing; try again`);
  }

  /** Map an engine's network id to a cluster network (idempotent). */
  async addAlias(key: string, engineNetworkId: string, node: string, extra?: (n: NetworkRecord) => NetworkRecord): Promise<NetworkRecord | undefined> {
    const exists = await guarded(() => this.s.kv.get(netidPath(engineNetworkId)));
    return this.updateNetwork(key, (n) => {
      const withAlias = { ...n, aliases: { ...n.aliases, [engineNetworkId]: node } };
      const next = extra ? extra(withAlias) : withAlias;
      if (exists && json(next) === json(n)) return undefined;
      return {
        next,
        ops: exists ? [] : [{ type: 'create', path: netidPath(engineNetworkId), data: json({ network: key, node }) }],
      };
    });
  }

  /** Networks removed through Docker (their VNIs' devices may go); unreadable ones are skipped. */
  async listTombstones(): Promise<TombstoneRecord[]> {
    const keys = await guarded(() => this.s.kv.children(TOMBSTONES));
    return (await this.s.readAll(TombstoneSchema, keys.map((k) => tombstonePath(k)))) as TombstoneRecord[];
  }

  /**
   * Drop one engine's alias. With `markDeleted` the network is flagged removed
   * on every node. When no alias is left the whole network goes: record,
   * endpoints and VNI claim. Returns what is left (undefined once gone).
   */
  async removeAlias(key: string, engineNetworkId: string, markDeleted: boolean): Promise<NetworkRecord | undefined> {
    this.aliasCache.delete(engineNetworkId);
    for (let attempt = 0; attempt < 10; attempt++) {
      const cur = await this.getNetworkVersioned(key);
      const aliasNode = await guarded(() => this.s.kv.get(netidPath(engineNetworkId)));
      const aliasOps: KvOp[] = aliasNode ? [{ type: 'delete', path: netidPath(engineNetworkId), version: -1 }] : [];
      if (!cur) {
        if (aliasOps.length > 0) await this.s.commitIdempotent(aliasOps);
        return undefined;
      }
      const aliases = { ...cur.value.aliases };
      delete aliases[engineNetworkId];
      const next: NetworkRecord = { ...cur.value, aliases, deleted: cur.value.deleted || markDeleted };
      let ops: KvOp[];
      if (Object.keys(aliases).length > 0) {
        ops = [{ type: 'set', path: networkPath(key), data: json(next), version: cur.version }, ...aliasOps];
      } else {
        const eps = await guarded(() => this.s.kv.children(endpointsDir(key)));
        const names = await guarded(() => this.s.kv.children(dnsNamesDir(key)));
        const namesDir = await guarded(() => this.s.kv.get(dnsNamesDir(key)));
        const owner = await guarded(() => this.s.kv.get(vniPath(cur.value.vni)));
        const tomb = await guarded(() => this.s.kv.get(tombstonePath(key)));
        const by = aliasNode ? (parseAlias(aliasNode.data)?.node ?? 'unknown') : 'unknown';
        const tombstone: TombstoneRecord = { network: key, vni: cur.value.vni, deletedAt: new Date().toISOString(), by };
        ops = [
          // the durable deletion every node acts on (absence alone removes nothing)
          tomb
            ? { type: 'set', path: tombstonePath(key), data: json(tombstone), version: tomb.version }
            : { type: 'create', path: tombstonePath(key), data: json(tombstone) },
          ...eps.map((e): KvOp => ({ type: 'delete', path: endpointPath(key, e), version: -1 })),
          { type: 'delete', path: endpointsDir(key), version: -1 },
          ...names.map((e): KvOp => ({ type: 'delete', path: dnsNamePath(key, e), version: -1 })),
          ...(namesDir ? [{ type: 'delete', path: dnsNamesDir(key), version: -1 } as KvOp] : []),
          { type: 'delete', path: networkPath(key), version: cur.version },
          ...(owner?.data === key ? [{ type: 'delete', path: vniPath(cur.value.vni), version: owner.version } as KvOp] : []),
          ...aliasOps,
        ];
      }
      try {
        await guarded(() => this.s.kv.commit(ops));
        return Object.keys(aliases).length > 0 ? next : undefined;
      } catch (e) {
        if (!(e instanceof KvConflict)) throw e; // raced with another node: re-read
      }
    }
    throw new TsoverlayError('STORE_CONFLICT', `network ${key} kept changing while removing it; try again`);
  }
}

/** The node of an engine alias record, if it decodes. */
const parseAlias = (data: string): { network: string; node: string } | undefined => {
  try {
    return decode(AliasSchema, data, 'alias');
  } catch {
    return undefined;
  }
};
