/** Which networks this node takes part in: scanned once at start, then kept by the driver's calls. */
import t from 'tap';
import { silentLog } from '../log.js';
import { type EndpointRecord, type NetworkRecord, asEndpointId, asNetworkId, asPoolId, asVni } from '../model.js';
import { ClusterState } from '../store/cluster-state.js';
import { MemoryKvStore } from '../store/memory-kv-store.js';
import { LocalEndpoints } from './local-endpoints.js';

const network = (key: string, vni: number, subnet: string, aliases: Record<string, string>): NetworkRecord => ({
  id: asNetworkId(key), vni: asVni(vni), aliases, deleted: false, mtu: 1450, internal: false,
  ipv4: [{ poolId: asPoolId(key), pool: subnet }], ipv6: [], options: {}, createdBy: 'A', createdAt: 'x',
});
const endpoint = (key: string, id: string, node: string, ip: string): EndpointRecord => ({
  id: asEndpointId(id.padEnd(64, '0')), networkId: asNetworkId(key), node, ipv4: `${ip}/24`,
  mac: `02:42:${ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(':')}`, hostIf: `tsh${id}`, containerIf: `tsc${id}`,
});

const K = 'tsoverlay-local:10.20.0.0_24'; // A has an endpoint here
const L = 'tsoverlay-local:10.30.0.0_24'; // A's engine has it (replicated), only B has endpoints
const M = 'tsoverlay-local:10.40.0.0_24'; // not on A's engine at all
const N = 'tsoverlay-local:10.50.0.0_24'; // A has an endpoint, but the record is unreadable now

const setup = async () => {
  const kv = new MemoryKvStore();
  const state = new ClusterState(kv);
  await state.init();
  await state.createNetwork(network(K, 4096, '10.20.0.0/24', { a1: 'A', b1: 'B' }), 'a1', 'A');
  await state.createNetwork(network(L, 4097, '10.30.0.0/24', { a2: 'A', b2: 'B' }), 'a2', 'A');
  await state.createNetwork(network(M, 4098, '10.40.0.0/24', { b3: 'B' }), 'b3', 'B');
  await state.createEndpoint(endpoint(K, 'k1', 'A', '10.20.0.2'));
  await state.createEndpoint(endpoint(K, 'k2', 'B', '10.20.0.3'));
  await state.createEndpoint(endpoint(L, 'l1', 'B', '10.30.0.2'));
  return { kv, state };
};

t.test('the start scan: networks with an endpoint of this node, and their endpoints', async (t) => {
  const { state } = await setup();
  const local = new LocalEndpoints('A');
  const own = await local.load(state, silentLog);
  t.same(own.map((e) => e.id.slice(0, 2)), ['k1']);
  t.same(local.networks(), [K]);
  t.ok(local.takesPart(K));
  t.notOk(local.takesPart(L), 'replicated here, no endpoint of its own: not taken part in');
  t.notOk(local.takesPart(M));
});

t.test('a network whose record cannot be read at start is found by its endpoint folder: followed once it can be read', async (t) => {
  const { kv, state } = await setup();
  await state.createNetwork(network(N, 4099, '10.50.0.0/24', { a5: 'A' }), 'a5', 'A');
  await state.createEndpoint(endpoint(N, 'n1', 'A', '10.50.0.2'));
  const rec = await kv.get(`/networks/${N}`);
  await kv.commit([{ type: 'set', path: `/networks/${N}`, data: '{"layout":"from-the-future"}', version: rec!.version }]);
  t.notOk((await state.listNetworks()).some((n) => n.id === N), 'its record is skipped by the network list');
  const local = new LocalEndpoints('A');
  await local.load(state, silentLog);
  t.ok(local.takesPart(N), 'still taken part in: its remote entries are not dropped when the record comes back');
});

t.test('kept by the driver: the first endpoint adds the network, the last one removed takes it out', async (t) => {
  const local = new LocalEndpoints('A');
  local.add(L, 'e1');
  local.add(L, 'e2');
  t.ok(local.takesPart(L));
  local.remove(L, 'e1');
  t.ok(local.takesPart(L), 'one endpoint left');
  local.remove(L, 'e9');
  t.ok(local.takesPart(L), 'an unknown endpoint changes nothing');
  local.remove(L, 'e2');
  t.notOk(local.takesPart(L), 'the last one gone');
  local.remove(L, 'e2');
  t.same(local.networks(), []);
});

t.test('a network whose endpoints cannot be read at start is followed anyway: not knowing is no reason to stop', async (t) => {
  const { state } = await setup();
  const broken = Object.create(state, {
    listEndpoints: { value: async (key: string) => { if (key === L) throw new Error('CONNECTION_LOSS'); return state.listEndpoints(key); } },
  }) as ClusterState;
  const warnings: string[] = [];
  const log = { ...silentLog, warn: (_o: unknown, msg: string) => void warnings.push(msg) };
  const local = new LocalEndpoints('A');
  await local.load(broken, log);
  t.same(local.networks(), [K, L]);
  t.equal(warnings.length, 1, 'said once');
  local.add(L, 'e1');
  local.remove(L, 'e1');
  t.ok(local.takesPart(L), 'still followed after an endpoint came and went');
});

t.test('a failed list of endpoint folders fails the scan (the start retries; nothing is decided from it)', async (t) => {
  const { state } = await setup();
  const broken = Object.create(state, { endpointNetworks: { value: async () => { throw new Error('CONNECTION_LOSS'); } } }) as ClusterState;
  await t.rejects(new LocalEndpoints('A').load(broken, silentLog), /CONNECTION_LOSS/);
});
