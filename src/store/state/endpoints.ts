/**
 * Endpoint records of ClusterState: /endpoints/<networkKey>/<endpointId>.
 * Creating one is idempotent for Docker's replays; deleting one also removes
 * the names it published.
 */
import { TsoverlayError } from '../../errors.js';
import type { EndpointRecord } from '../../model.js';
import { KvConflict, type KvOp } from '../kv-store.js';
import { dnsNamePath, endpointPath, endpointsDir } from '../paths.js';
import { EndpointSchema, decode } from '../records.js';
import { type StoreAccess, guarded, json } from './store-access.js';

export class EndpointState {
  constructor(private readonly s: StoreAccess) {}

  async getEndpoint(networkId: string, endpointId: string): Promise<EndpointRecord | undefined> {
    const p = endpointPath(networkId, endpointId);
    const v = await guarded(() => this.s.kv.get(p));
    return v ? (this.s.decodeOnce(EndpointSchema, v, p) as EndpointRecord) : undefined;
  }

  /** The network keys with an endpoint folder: every network, whether or not its record can be read. */
  async endpointNetworks(): Promise<string[]> {
    return guarded(() => this.s.kv.children('/endpoints'));
  }

  async listEndpoints(networkId: string): Promise<EndpointRecord[]> {
    const ids = await guarded(() => this.s.kv.children(endpointsDir(networkId)));
    const paths = ids.map((id) => endpointPath(networkId, id));
    return (await this.s.readAll(EndpointSchema, paths)) as EndpointRecord[];
  }

  /** The endpoints with their records' creation stamps (the duplicate rule: newest wins). */
  async listEndpointsStamped(networkId: string): Promise<{ endpoints: EndpointRecord[]; created: Map<string, number> }> {
    const ids = await guarded(() => this.s.kv.children(endpointsDir(networkId)));
    const { records, created } = await this.s.readEach(EndpointSchema, ids.map((id) => endpointPath(networkId, id)));
    const endpoints = records as EndpointRecord[];
    return { endpoints, created: new Map(endpoints.map((ep, i) => [ep.id, created[i] ?? 0])) };
  }

  /** Store a new endpoint. Succeeds without change if the same record exists. */
  async createEndpoint(rec: EndpointRecord): Promise<void> {
    try {
      await guarded(() => this.s.kv.commit([{ type: 'create', path: endpointPath(rec.networkId, rec.id), data: json(rec) }]));
    } catch (e) {
      if (!(e instanceof KvConflict)) throw e;
      if (e.reason === 'missing') {
        throw new TsoverlayError('NETWORK_NOT_FOUND', `network ${rec.networkId.slice(0, 12)} is not known to tsoverlay`);
      }
      const existing = await this.getEndpoint(rec.networkId, rec.id);
      // A replay (Docker retried): the same endpoint, perhaps joined since.
      if (existing && json({ ...existing, sandboxKey: undefined }) === json({ ...rec, sandboxKey: undefined })) return;
      throw new TsoverlayError('STORE_CONFLICT', `endpoint ${rec.id.slice(0, 12)} already exists with other settings`);
    }
  }

  /** Remove an endpoint and its published names. False if it was not stored. */
  async deleteEndpoint(networkId: string, endpointId: string): Promise<boolean> {
    const existed = (await guarded(() => this.s.kv.get(endpointPath(networkId, endpointId)))) !== undefined;
    const named = (await guarded(() => this.s.kv.get(dnsNamePath(networkId, endpointId)))) !== undefined;
    const ops: KvOp[] = [
      ...(existed ? [{ type: 'delete', path: endpointPath(networkId, endpointId), version: -1 } as KvOp] : []),
      ...(named ? [{ type: 'delete', path: dnsNamePath(networkId, endpointId), version: -1 } as KvOp] : []),
    ];
    if (ops.length > 0) await this.s.commitIdempotent(ops);
    return existed;
  }

  /** Record the sandbox an endpoint joined (last writer wins: only its owner writes it). */
  async setEndpointSandbox(networkId: string, endpointId: string, sandboxKey: string): Promise<void> {
    const p = endpointPath(networkId, endpointId);
    const v = await guarded(() => this.s.kv.get(p));
    if (!v) return;
    const ep = decode(EndpointSchema, v.data, p) as EndpointRecord;
    if (ep.sandboxKey === sandboxKey) return;
    try {
      await guarded(() => this.s.kv.commit([{ type: 'set', path: p, data: json({ ...ep, sandboxKey }), version: v.version }]));
    } catch (e) {
      if (!(e instanceof KvConflict)) throw e; // removed or changed meanwhile: nothing to record
    }
  }
}
