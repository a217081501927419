/**
 * The scale-out benchmark's simulated node (bench/sim/sim-node.ts) writes
 * what a real node writes: on one store, a real plugin (the whole app on a
 * fake kernel, driven through its HTTP API as dockerd drives it) and a sim
 * create, join and leave networks and endpoints, and their records are
 * compared field by field. With TSOVERLAY_IT=1 (under the lab lock) the
 * same comparison runs on a real ZooKeeper ensemble, against a real plugin
 * on a lab host, with the sims in their own process (bench/sim/sim-main.ts).
 */
import t from 'tap';
import { SimNode } from '../../bench/sim/sim-node.js';
import { MemoryKvStore } from '../../src/store/memory-kv-store.js';
import { AddressSchema, EndpointSchema, NetworkSchema, NodeSchema, PoolSchema, decode } from '../../src/store/records.js';
import { addressPath, endpointPath, netidPath, networkPath, nodePath, poolPath } from '../../src/store/paths.js';
import { packageVersion } from '../../src/version.js';
import { SimProcess } from '../../bench/sim/sim-process.js';
import { BUSYBOX_IMAGE, SLEEPER, waitFor, type Lab } from '../lab/index.js';
import { SKIP_REASON, integrationEnabled, labForFile } from '../lab/suite.js';
import { harness } from './helpers.js';

const keys = (o: object): string[] => Object.keys(o).sort();

const read = async (kv: MemoryKvStore, path: string): Promise<Record<string, unknown>> => {
  const v = await kv.get(path);
  if (!v) throw new Error(`${path} is not stored`);
  return JSON.parse(v.data) as Record<string, unknown>;
};

t.test('a simulated node\'s records are a real node\'s (in-memory store)', async (t) => {
  const kv = new MemoryKvStore();
  const real = await harness({ kv, node: 'real1' });
  const ok = async (method: string, body: unknown) => {
    const r = await real.call(method, body);
    t.equal(r.status, 200, `${method}: ${JSON.stringify(r.json)}`);
    return r.json;
  };
  const sim = await SimNode.start(kv, { name: 'sim000', address: '198.18.0.1' });

  // node records: same fields, both valid, same version and port
  const realNode = await read(kv, nodePath('real1'));
  const simNode = await read(kv, nodePath('sim000'));
  t.same(keys(simNode), keys(realNode), 'node record fields');
  decode(NodeSchema, JSON.stringify(simNode), 'sim node');
  t.equal(simNode['version'], packageVersion());
  t.equal(simNode['version'], realNode['version']);
  t.equal(simNode['vxlanPort'], realNode['vxlanPort']);
  t.equal(simNode['address'], '198.18.0.1');

  // a network the real node creates, joined by the sim (what replication makes an engine do)
  const pool = await ok('IpamDriver.RequestPool', { AddressSpace: 'tsoverlay-local', Pool: '10.60.0.0/24', SubPool: '', Options: {}, V6: false });
  const gw = await ok('IpamDriver.RequestAddress', { PoolID: pool['PoolID'], Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } });
  const realNetId = 'a1'.repeat(32);
  await ok('NetworkDriver.CreateNetwork', {
    NetworkID: realNetId,
    Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} },
    IPv4Data: [{ AddressSpace: 'tsoverlay-local', Gateway: gw['Address'], Pool: pool['Pool'] }],
    IPv6Data: [],
  });
  const simNet = await sim.joinNetwork('10.60.0.0/24');
  t.equal(simNet.poolId, pool['PoolID'], 'the sim joined the same pool');
  t.equal(simNet.gateway, gw['Address'], 'and got the same gateway');
  const key = String(pool['PoolID']);
  const net = decode(NetworkSchema, JSON.stringify(await read(kv, networkPath(key))), 'network');
  t.same(Object.values(net.aliases).sort(), ['real1', 'sim000'], 'one network, an alias per node');
  t.same(await read(kv, netidPath(simNet.engineId)), { network: key, node: 'sim000' }, 'the sim\'s engine id');
  t.same(keys(await read(kv, netidPath(simNet.engineId))), keys(await read(kv, netidPath(realNetId))));
  t.same(decode(PoolSchema, JSON.stringify(await read(kv, poolPath(key))), 'pool').users.sort(), ['real1', 'sim000']);

  // an endpoint each
  const addr = await ok('IpamDriver.RequestAddress', { PoolID: key, Address: '', Options: null });
  const realEp = 'b2'.repeat(32);
  await ok('NetworkDriver.CreateEndpoint', { NetworkID: realNetId, EndpointID: realEp, Interface: { Address: addr['Address'], AddressIPv6: '', MacAddress: '' }, Options: {} });
  await ok('NetworkDriver.Join', { NetworkID: realNetId, EndpointID: realEp, SandboxKey: '/var/run/docker/netns/0123456789ab', Options: {} });
  const simEp = await sim.attach(simNet);
  const re = await read(kv, endpointPath(key, realEp));
  const se = await read(kv, endpointPath(key, simEp.id));
  t.same(keys(se), keys(re), 'endpoint record fields (sandbox key included)');
  decode(EndpointSchema, JSON.stringify(se), 'sim endpoint');
  t.equal(se['node'], 'sim000');
  t.equal(se['networkId'], re['networkId']);
  const ra = await read(kv, addressPath(key, String(addr['Address']).split('/')[0]!));
  const sa = await read(kv, addressPath(key, simEp.address));
  t.same(keys(sa), keys(ra), 'address claim fields');
  decode(AddressSchema, JSON.stringify(sa), 'sim address');
  t.same({ kind: sa['kind'], node: sa['node'] }, { kind: 'endpoint', node: 'sim000' });

  // networks only the sim has: created by it, with the same fields as the real node's
  const own = await sim.joinNetwork('10.61.0.0/24');
  const ownRec = await read(kv, networkPath(own.poolId));
  t.same(keys(ownRec), keys(net), 'network record fields');
  t.equal(ownRec['createdBy'], 'sim000');
  t.not(ownRec['vni'], net.vni, 'its own VNI');

  // leaving: the sim's endpoint, address and alias go; the real node's stay
  await sim.detach(simEp);
  t.equal(await kv.get(endpointPath(key, simEp.id)), undefined, 'endpoint removed');
  t.equal(await kv.get(addressPath(key, simEp.address)), undefined, 'address released');
  await sim.leaveNetwork(simNet);
  t.same(Object.values(decode(NetworkSchema, JSON.stringify(await read(kv, networkPath(key))), 'network').aliases), ['real1'], 'alias gone, network kept');
  t.ok(await kv.get(endpointPath(key, realEp)), 'the real node\'s endpoint stays');
  await sim.stop();
  await real.app.stop();
});

t.test('follow keeps a real node\'s watches and sees other nodes\' endpoints', async (t) => {
  const kv = new MemoryKvStore();
  const a = await SimNode.start(kv, { name: 'sim000', address: '198.18.0.1', follow: true });
  const b = await SimNode.start(kv, { name: 'sim001', address: '198.18.0.2', follow: true });
  const na = await a.joinNetwork('10.62.0.0/24');
  await b.joinNetwork('10.62.0.0/24');
  const before = b.followReads;
  await a.attach(na);
  await waitFor(() => b.followReads, { what: 'sim001 to re-read after sim000\'s endpoint', until: (n) => n > before, timeoutMs: 5000, intervalMs: 10 });
  t.pass('the watch fired');
  await a.stop();
  await b.stop();
});

/** A record under the lab's chroot, through zk-raw (the test process cannot reach the lab's underlay). */
const zkJson = async (lab: Lab, path: string): Promise<Record<string, unknown>> => {
  const r = await lab.zkRaw('get', `${lab.zkChroot}${path}`);
  if (r.code !== 0) throw new Error(`zk-raw get ${path}: exit ${r.code} ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
};
const zkChildren = async (lab: Lab, path: string): Promise<string[]> =>
  (await lab.zkRaw('children', `${lab.zkChroot}${path}`)).stdout.split('\n').filter(Boolean);

t.test('on a real ZooKeeper ensemble, beside a real plugin', { skip: integrationEnabled() ? false : SKIP_REASON }, async (t) => {
  const lab = await labForFile(t, { hosts: [{ name: 'h1' }], zookeeper: { servers: 3 }, plugin: { store: 'zk' } }, { logLines: 60 });
  if (!lab) return;
  const h1 = lab.host('h1');
  await h1.startPlugin();
  await h1.docker('network', 'create', '-d', 'tsoverlay', '--ipam-driver', 'tsoverlay', '--subnet', '10.97.0.0/24', 'simit');
  await h1.docker('run', '-d', '--name', 'c1', '--net', 'simit', BUSYBOX_IMAGE, ...SLEEPER);
  const { sim, ready } = await SimProcess.start(lab, { nodes: 2, shared: '10.97.0.0/24' });
  t.teardown(() => sim.stop());
  t.equal(ready['nodes'], 2, 'two sims registered');
  const nodes = await zkChildren(lab, '/nodes');
  const realName = nodes.find((n) => !n.startsWith('sim'));
  t.ok(realName, `the real node is registered (${nodes.join(', ')})`);
  const realNode = await zkJson(lab, `/nodes/${realName}`);
  const simNode = await zkJson(lab, '/nodes/sim000');
  t.same(keys(simNode), keys(realNode), 'node record fields');
  t.equal(simNode['version'], realNode['version'], 'same version');
  t.equal(simNode['vxlanPort'], realNode['vxlanPort']);

  const key = 'tsoverlay-local:10.97.0.0_24';
  const net = await zkJson(lab, `/networks/${key}`);
  t.same(Object.values(net['aliases'] as Record<string, string>).sort(), [realName, 'sim000', 'sim001'].sort(), 'one network, an alias per node');
  t.same([...((await zkJson(lab, `/pools/${key}`))['users'] as string[])].sort(), [realName, 'sim000', 'sim001'].sort(), 'pool users');

  // one sim container, kept long enough to compare its records with the real container's
  const churn = sim.churn('shared', 1, 1, 10_000);
  const eps = await waitFor(() => zkChildren(lab, `/endpoints/${key}`), { what: 'a sim endpoint beside the real one', until: (e) => e.length >= 2, timeoutMs: 30_000, intervalMs: 100 });
  const recs = await Promise.all(eps.map((e) => zkJson(lab, `/endpoints/${key}/${e}`)));
  const real = recs.find((r) => r['node'] === realName);
  const simmed = recs.find((r) => r['node'] !== realName);
  t.ok(real && simmed, 'a real and a simulated endpoint');
  t.same(keys(simmed!), keys(real!), 'endpoint record fields');
  const addrs = (await zkChildren(lab, `/pools/${key}`));
  const owners = await Promise.all(addrs.map((a) => zkJson(lab, `/pools/${key}/${a}`)));
  const ra = owners.find((o) => o['node'] === realName && o['kind'] === 'endpoint');
  const sa = owners.find((o) => o['node'] !== realName && o['kind'] === 'endpoint');
  t.ok(ra && sa, 'an address claim each');
  t.same(keys(sa!), keys(ra!), 'address claim fields');
  const done = await churn;
  t.same({ events: done.events, errors: done.errors }, { events: 2, errors: 0 }, 'the sim container came and went');
  await sim.stop();
  t.same((await zkChildren(lab, '/nodes')).filter((n) => n.startsWith('sim')), [], 'the sims\' node records went with their sessions');
});
