/**
 * The cost of one reconcile pass on fakes (MemoryKvStore, FakeDataplane; no
 * lab, no root): a pass scoped to one network against a pass over the whole
 * store, at 200 networks x 25 endpoints on three nodes, as node A sees it.
 *   TS_NODE_TRANSPILE_ONLY=1 node --import=@tapjs/typescript/import bench/pass-cost.ts
 */
import { FakeDataplane } from '../src/dataplane/fake-dataplane.js';
import { silentLog } from '../src/log.js';
import { asEndpointId, asNetworkId, asPoolId, asVni } from '../src/model.js';
import { ClusterState } from '../src/store/cluster-state.js';
import { MemoryKvStore } from '../src/store/memory-kv-store.js';
import { WHOLE_CLUSTER, networkChange } from '../src/cluster/store-change.js';
import { Reconciler } from '../src/reconcile/reconciler.js';
import { LocalEndpoints } from '../src/cluster/local-endpoints.js';

const kv = new MemoryKvStore();
const state = new ClusterState(kv);
await state.init();
const dp = new FakeDataplane();
const underlay = await dp.resolveUnderlay(undefined);
const nodes = [['A', underlay.address], ['B', '10.0.0.8'], ['C', '10.0.0.9']] as const;
for (const [node, address] of nodes) await state.registerNode({ node, address, vxlanPort: 4789, hostname: node, version: '1', startedAt: 'x' });
const N = 200, E = 5000;
const keys: string[] = [];
for (let i = 0; i < N; i++) {
  const key = `tsoverlay-local:10.${100 + Math.floor(i / 250)}.${i % 250}.0_24`;
  keys.push(key);
  await state.createNetwork({ id: asNetworkId(key), vni: asVni(4096 + i), aliases: { [`a${i}`]: 'A', [`b${i}`]: 'B', [`c${i}`]: 'C' }, deleted: false, mtu: 1450, internal: false,
    ipv4: [{ poolId: asPoolId(key), pool: `10.${100 + Math.floor(i / 250)}.${i % 250}.0/24` }], ipv6: [], options: {}, createdBy: 'A', createdAt: 'x', mode: 'macvlan' }, `a${i}`, 'A');
}
for (let k = 0; k < E; k++) {
  const i = k % N; const node = nodes[k % 3]![0]; const host = 2 + Math.floor(k / N);
  const id = k.toString(16).padStart(64, '0');
  await state.createEndpoint({ id: asEndpointId(id), networkId: asNetworkId(keys[i]!), node, ipv4: `10.${100 + Math.floor(i / 250)}.${i % 250}.${host}/24`,
    mac: `02:42:0a:${(100 + Math.floor(i / 250)).toString(16).padStart(2, '0')}:${(i % 250).toString(16).padStart(2, '0')}:${host.toString(16).padStart(2, '0')}`, hostIf: `tsh${id.slice(0, 11)}`, containerIf: `tsc${id.slice(0, 11)}` });
}
const local = new LocalEndpoints('A');
await local.load(state, silentLog); // A has endpoints in every network
const r = new Reconciler({ state, dataplane: dp, underlay, node: 'A', local, vxlanPort: 4789, intervalMs: 3_600_000, log: silentLog });
let t0 = performance.now();
const first = await r.runOnce();
console.log('first (full) pass', first, Math.round(performance.now() - t0), 'ms');
await r.stop();
const time = async (what: string, mark: () => void, n: number) => {
  const t = performance.now();
  for (let j = 0; j < n; j++) { mark(); await r.runOnce(); }
  console.log(what, ((performance.now() - t) / n).toFixed(2), 'ms per pass');
};
await time('whole-store delta pass (every change before)', () => r.markDirty(WHOLE_CLUSTER), 20);
await time('scoped pass (one network)', () => r.markDirty(networkChange(keys[7]!)), 200);
