/** The name index: a refresh scoped to some networks re-reads theirs and keeps every other network's names. */
import t from 'tap';
import { type DnsNameRecord, type EndpointRecord, type NetworkRecord, asEndpointId, asNetworkId, asPoolId, asVni } from '../model.js';
import { ClusterState } from '../store/cluster-state.js';
import { MemoryKvStore } from '../store/memory-kv-store.js';
import { networkPath } from '../store/paths.js';
import { NameIndex } from './name-index.js';

const K = 'tsoverlay-local:10.20.0.0_24';
const L = 'tsoverlay-local:10.30.0.0_24';

const network = (key: string, vni: number, subnet: string, name: string): NetworkRecord => ({
  id: asNetworkId(key), vni: asVni(vni), aliases: { [`a${vni}`]: 'A' }, deleted: false, mtu: 1450, internal: false,
  ipv4: [{ poolId: asPoolId(key), pool: subnet }], ipv6: [], options: {}, createdBy: 'A', createdAt: 'x', name,
});
const endpoint = (key: string, id: string, ip: string): EndpointRecord => ({
  id: asEndpointId(id), networkId: asNetworkId(key), node: 'A', ipv4: `${ip}/24`, mac: '02:42:0a:00:00:01', hostIf: `tsh${id}`, containerIf: `tsc${id}`,
});
const dnsName = (key: string, id: string, name: string, ip: string): DnsNameRecord => ({
  endpointId: id, network: key, node: 'A', containerId: `c-${name}`, name, aliases: [], ipv4: ip,
});

const setup = async () => {
  const kv = new MemoryKvStore();
  const state = new ClusterState(kv);
  await state.init();
  await state.createNetwork(network(K, 4096, '10.20.0.0/24', 'front'), 'a4096', 'A');
  await state.createNetwork(network(L, 4097, '10.30.0.0/24', 'back'), 'a4097', 'A');
  await state.createEndpoint(endpoint(K, 'k1', '10.20.0.2'));
  await state.createEndpoint(endpoint(L, 'l1', '10.30.0.2'));
  await state.putDnsName(dnsName(K, 'k1', 'web', '10.20.0.2'));
  await state.putDnsName(dnsName(L, 'l1', 'db', '10.30.0.2'));
  const index = new NameIndex(state, 'A', { takesPart: () => true });
  await index.refresh();
  return { kv, state, index };
};

const names = (index: NameIndex, key: string) => index.records(key).map((r) => r.name).sort();

t.test('a whole refresh reads every network this node has', async (t) => {
  const { index } = await setup();
  t.same(names(index, K), ['web']);
  t.same(names(index, L), ['db']);
  t.equal(index.networkName(K), 'front');
  t.same(index.networksOf('10.30.0.2'), [L]);
});

t.test('a refresh scoped to K re-reads K alone; L keeps what it had until a change names it', async (t) => {
  const { state, index } = await setup();
  await state.createEndpoint(endpoint(K, 'k2', '10.20.0.3'));
  await state.putDnsName(dnsName(K, 'k2', 'api', '10.20.0.3'));
  await state.createEndpoint(endpoint(L, 'l2', '10.30.0.3'));
  await state.putDnsName(dnsName(L, 'l2', 'cache', '10.30.0.3'));
  await index.refresh(new Set([K]));
  t.same(names(index, K), ['api', 'web'], 'K re-read');
  t.same(index.networksOf('10.20.0.3'), [K], 'K\'s new local endpoint is known by its address');
  t.same(names(index, L), ['db'], 'L untouched');
  t.same(index.networksOf('10.30.0.2'), [L], 'L\'s local endpoints stay known');
  t.same(index.networksOf('10.30.0.3'), [], 'L\'s new endpoint not yet');
  await index.refresh(new Set([L]));
  t.same(names(index, L), ['cache', 'db']);
});

t.test('a scoped network this node no longer has, or gone, leaves the index; the others stay', async (t) => {
  const { kv, index } = await setup();
  const rec = await kv.get(networkPath(K));
  await kv.commit([{ type: 'delete', path: networkPath(K), version: rec!.version }]);
  await index.refresh(new Set([K]));
  t.same(names(index, K), []);
  t.same(index.networksOf('10.20.0.2'), []);
  t.same(names(index, L), ['db']);
});
