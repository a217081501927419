/**
 * Published names of ClusterState (the resolver's records):
 * /dnsnames/<networkKey>/<endpointId>. Replaced by delete + create, so a
 * children watch on the folder sees every change, and only while the
 * endpoint exists.
 */
import { TsoverlayError } from '../../errors.js';
import type { DnsNameRecord } from '../../model.js';
import { KvConflict, type KvOp } from '../kv-store.js';
import { dnsNamePath, dnsNamesDir, endpointPath } from '../paths.js';
import { DnsNameSchema } from '../records.js';
import { type StoreAccess, guarded, json } from './store-access.js';

export class NameState {
  constructor(private readonly s: StoreAccess) {}

  /** Create or replace the names of an endpoint; false if the endpoint (or its network) is gone. */
  async putDnsName(rec: DnsNameRecord): Promise<boolean> {
    const p = dnsNamePath(rec.network, rec.endpointId);
    for (let attempt = 0; attempt < 5; attempt++) {
      const cur = await guarded(() => this.s.kv.get(p));
      if (cur?.data === json(rec)) return true;
      // Replace = delete + create, so watchers of the folder see the change.
      const ops: KvOp[] = [
        // Only while the endpoint exists: a late publish must not outlive it.
        { type: 'check', path: endpointPath(rec.network, rec.endpointId), version: -1 },
        ...(cur ? [{ type: 'delete', path: p, version: cur.version } as KvOp] : []),
        { type: 'create', path: p, data: json(rec) },
      ];
      try {
        await guarded(() => this.s.kv.commit(ops));
        return true;
      } catch (e) {
        if (!(e instanceof KvConflict)) throw e;
        if (e.reason === 'missing' && (e.op.type === 'create' || e.op.type === 'check')) return false;
      }
    }
    throw new TsoverlayError('STORE_CONFLICT', `names of endpoint ${rec.endpointId.slice(0, 12)} kept changing`);
  }

  async getDnsName(networkId: string, endpointId: string): Promise<DnsNameRecord | undefined> {
    const p = dnsNamePath(networkId, endpointId);
    const v = await guarded(() => this.s.kv.get(p));
    return v ? (this.s.decodeOnce(DnsNameSchema, v, p) as DnsNameRecord) : undefined;
  }

  async listDnsNames(networkId: string): Promise<DnsNameRecord[]> {
    const ids = await guarded(() => this.s.kv.children(dnsNamesDir(networkId)));
    const paths = ids.map((id) => dnsNamePath(networkId, id));
    return (await this.s.readAll(DnsNameSchema, paths)) as DnsNameRecord[];
  }
}
