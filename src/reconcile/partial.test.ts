/**
 * Passes scoped to the networks a store change concerns (partial.ts): they
 * read and change those networks only, leave every other network as the
 * last pass left it, and leave a network whose record is unreadable alone.
 */
import t, { type Test } from 'tap';
import { DEFAULT_FAKE_UNDERLAY, FakeDataplane } from '../dataplane/fake-dataplane.js';
import { vxlanName } from '../dataplane/names.js';
import type { Log } from '../log.js';
import { type EndpointRecord, type NetworkRecord, asEndpointId, asNetworkId, asPoolId, asVni } from '../model.js';
import { ClusterState } from '../store/cluster-state.js';
import { MemoryKvStore } from '../store/memory-kv-store.js';
import { networkPath } from '../store/paths.js';
import { WHOLE_CLUSTER, networkChange } from '../cluster/store-change.js';
import { type Desired, computeDesired } from './desired.js';
import { mergeParts } from './partial.js';
import { Reconciler } from './reconciler.js';
import { LocalEndpoints } from '../cluster/local-endpoints.js';

const K = 'tsoverlay-local:10.20.0.0_24';
const L = 'tsoverlay-local:10.30.0.0_24';

const network = (key: string, vni: number, subnet: string): NetworkRecord => ({
  id: asNetworkId(key),
  vni: asVni(vni),
  aliases: { [`a${vni}`]: 'A', [`b${vni}`]: 'B' },
  deleted: false,
  mtu: 1450,
  internal: false,
  ipv4: [{ poolId: asPoolId(key), pool: subnet }],
  ipv6: [],
  options: {},
  createdBy: 'A',
  createdAt: 'x',
});

const endpoint = (key: string, id: string, node: string, ip: string): EndpointRecord => ({
  id: asEndpointId(id.padEnd(64, '0')),
  networkId: asNetworkId(key),
  node,
  ipv4: `${ip}/24`,
  mac: `02:42:${ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(':')}`,
  hostIf: `tsh${id}`,
  containerIf: `tsc${id}`,
});

const recording = (): Log & { warnings: string[] } => {
  const warnings: string[] = [];
  return { debug() {}, info() {}, warn: (_o, msg) => void warnings.push(msg), error() {}, warnings };
};

/** A store with live nodes A (this one, on a fake kernel) and B, and network K on A's engine. */
const twoNodes = async () => {
  const kv = new MemoryKvStore();
  const state = new ClusterState(kv);
  await state.init();
  const dp = new FakeDataplane();
  const underlay = await dp.resolveUnderlay(undefined);
  for (const [node, address] of [['A', underlay.address], ['B', '10.0.0.9']] as const) {
    await state.registerNode({ node, address, vxlanPort: 4789, hostname: node, version: '1', startedAt: 'x' });
  }
  await state.createNetwork(network(K, 4096, '10.20.0.0/24'), 'a4096', 'A');
  return { kv, state, dp, underlay };
};

/** Node A with networks K and L, each with one endpoint on B and one on A (A takes part); one full pass run, the loop stopped. */
const setup = async (t: Test) => {
  const { kv, state, dp, underlay } = await twoNodes();
  await state.createNetwork(network(L, 4097, '10.30.0.0/24'), 'a4097', 'A');
  await state.createEndpoint(endpoint(K, 'k1', 'B', '10.20.0.2'));
  await state.createEndpoint(endpoint(L, 'l1', 'B', '10.30.0.2'));
  await state.createEndpoint(endpoint(K, 'k0', 'A', '10.20.0.100'));
  await state.createEndpoint(endpoint(L, 'l0', 'A', '10.30.0.100'));
  const log = recording();
  const reconciler = new Reconciler({ state, dataplane: dp, underlay, node: 'A', local: { takesPart: () => true }, vxlanPort: 4789, intervalMs: 3_600_000, log });
  t.same(await reconciler.runOnce(), { actions: 4 + 4, failed: 0 }, 'first pass: both networks, their entries');
  await reconciler.stop(); // passes run only when the test asks
  return { kv, state, dp, reconciler, log };
};

const macsOn = async (dp: FakeDataplane, vni: number) => (await dp.listForwarding(vxlanName(vni))).fdb.map((e) => e.mac).sort();

t.test('a pass scoped to K programs K and leaves L alone, even where L changed too; the next whole pass takes L', async (t) => {
  const { state, dp, reconciler } = await setup(t);
  t.equal(DEFAULT_FAKE_UNDERLAY.address !== '10.0.0.9', true);
  await state.createEndpoint(endpoint(K, 'k2', 'B', '10.20.0.3'));
  await state.createEndpoint(endpoint(L, 'l2', 'B', '10.30.0.3'));
  const before = dp.calls.length;
  reconciler.markDirty(networkChange(K));
  t.same(await reconciler.runOnce(), { actions: 2, failed: 0 }, 'K\'s new endpoint: one FDB and one neighbour entry');
  t.ok((await macsOn(dp, 4096)).includes('02:42:0a:14:00:03'), 'K has its new endpoint');
  t.notOk((await macsOn(dp, 4097)).includes('02:42:0a:1e:00:03'), 'L\'s new endpoint waits: the change did not concern L');
  t.same(dp.calls.slice(before).filter((c) => c.includes(vxlanName(4097))), [], 'nothing was done to L\'s device');

  reconciler.markDirty(WHOLE_CLUSTER);
  t.same(await reconciler.runOnce(), { actions: 2, failed: 0 }, 'a whole pass finds L\'s endpoint');
  t.ok((await macsOn(dp, 4097)).includes('02:42:0a:1e:00:03'));
});

t.test('a scoped pass never removes what belongs to networks outside its scope', async (t) => {
  const { kv, dp, reconciler } = await setup(t);
  // L's endpoint record disappears from the store, unseen (no change names L)
  await kv.commit([{ type: 'delete', path: `/endpoints/${L}/${'l1'.padEnd(64, '0')}`, version: -1 }]);
  const before = dp.calls.length;
  reconciler.markDirty(networkChange(K));
  t.same(await reconciler.runOnce(), { actions: 0, failed: 0 });
  t.same(dp.calls.slice(before), [], 'no kernel call at all');
  t.ok((await macsOn(dp, 4097)).includes('02:42:0a:1e:00:02'), 'L\'s entry stays');
});

t.test('a network whose record is unreadable is left alone in a scoped pass, said once', async (t) => {
  const { kv, state, dp, reconciler, log } = await setup(t);
  const rec = await kv.get(networkPath(K));
  await kv.commit([{ type: 'set', path: networkPath(K), data: '{"not":"a network"}', version: rec!.version }]);
  await kv.commit([{ type: 'delete', path: `/endpoints/${K}/${'k1'.padEnd(64, '0')}`, version: -1 }]);
  await state.createEndpoint(endpoint(L, 'l2', 'B', '10.30.0.3'));
  const before = dp.calls.length;
  reconciler.markDirty(networkChange(K));
  reconciler.markDirty(networkChange(L));
  t.same(await reconciler.runOnce(), { actions: 2, failed: 0 }, 'L is programmed');
  t.same(dp.calls.slice(before).filter((c) => c.includes(vxlanName(4096))), [], 'K untouched');
  t.ok(dp.links.get(vxlanName(4096)), 'K\'s device stays');
  t.ok((await macsOn(dp, 4096)).includes('02:42:0a:14:00:02'), 'and its entry, although its endpoint record is gone');
  reconciler.markDirty(networkChange(K));
  await reconciler.runOnce();
  t.equal(log.warnings.filter((w) => w.startsWith('network record unreadable')).length, 1, 'said once while it lasts');
});

t.test('a scoped network gone from the store widens the pass; the whole read keeps its devices (absence is not deletion)', async (t) => {
  const { kv, dp, reconciler } = await setup(t);
  const rec = await kv.get(networkPath(K));
  await kv.commit([{ type: 'delete', path: networkPath(K), version: rec!.version }]);
  reconciler.markDirty(networkChange(K, { record: true }));
  t.equal((await reconciler.runOnce()).failed, 0);
  t.ok(dp.links.get(vxlanName(4096)), 'no tombstone: the device is kept');
});

t.test('merge: an unchanged part leaves the desired state equal, in order; other networks keep theirs', async (t) => {
  const nodes = [{ node: 'A', address: '10.0.0.1', vxlanPort: 4789, hostname: 'A', version: '1', startedAt: 'x' }, { node: 'B', address: '10.0.0.9', vxlanPort: 4789, hostname: 'B', version: '1', startedAt: 'x' }];
  const input = {
    networks: [
      { net: network(K, 4096, '10.20.0.0/24'), endpoints: [endpoint(K, 'k1', 'B', '10.20.0.2'), endpoint(K, 'k9', 'A', '10.20.0.9')] },
      { net: network(L, 4097, '10.30.0.0/24'), endpoints: [endpoint(L, 'l1', 'B', '10.30.0.2')] },
    ],
    nodes, me: 'A', underlay: DEFAULT_FAKE_UNDERLAY, vxlanPort: 4789, dnsAddress: '169.254.53.53',
  };
  const whole: Desired = computeDesired(input);
  const same = computeDesired({ ...input, networks: [input.networks[0]!] });
  const merged = mergeParts(whole, [{ key: K, vxlan: vxlanName(4096), part: { devices: same.networks[0]!, endpoints: same.endpoints, forwarding: same.forwarding.get(vxlanName(4096))!, resolverRoutes: same.resolver!.routes, conflicts: [] } }]);
  t.same(JSON.stringify({ ...merged, forwarding: [...merged.forwarding] }), JSON.stringify({ ...whole, forwarding: [...whole.forwarding] }), 'equal, item for item');
  const without = mergeParts(whole, [{ key: K, vxlan: vxlanName(4096), part: undefined }]);
  t.same(without.networks.map((n) => n.vxlan), [vxlanName(4097)], 'K left, L kept');
  t.same(without.endpoints, [], 'K\'s local endpoint went with it');
  t.same([...without.forwarding.keys()], [vxlanName(4097)]);
  t.same(without.resolver?.routes.map((r) => r.dst), ['10.30.0.0/24']);
  t.same(without.removable, whole.removable);
  t.same(without.vxlanMembers, whole.vxlanMembers);
});

t.test('a network this node takes no part in: devices only; its first endpoint here brings the entries, its last one gone takes them away', async (t) => {
  const { state, dp, underlay } = await twoNodes(); // K: replicated to A's engine
  await state.createEndpoint(endpoint(K, 'k1', 'B', '10.20.0.2'));
  const local = new LocalEndpoints('A');
  const reads: string[] = [];
  const counting = Object.create(state, {
    listEndpointsStamped: { value: (key: string) => (reads.push(key), state.listEndpointsStamped(key)) },
  }) as ClusterState;
  const reconciler = new Reconciler({ state: counting, dataplane: dp, underlay, node: 'A', local, vxlanPort: 4789, intervalMs: 3_600_000, log: recording() });
  await reconciler.runOnce();
  await reconciler.stop();
  t.ok(dp.links.get(vxlanName(4096)), 'the device is there (the engine has the network)');
  t.same(await macsOn(dp, 4096), [], 'no remote entries');
  t.same(reads, [], 'its endpoints were not read');

  // B's endpoints come and go: nothing here reads them (the change would not even reach this node: no watch)
  await state.createEndpoint(endpoint(K, 'k2', 'B', '10.20.0.3'));
  reconciler.markDirty(networkChange(K));
  await reconciler.runOnce();
  t.same(reads, [], 'still not read');

  // a container here joins (the driver adds the network before writing the record)
  local.add(K, 'k0'.padEnd(64, '0'));
  await state.createEndpoint(endpoint(K, 'k0', 'A', '10.20.0.100'));
  reconciler.markDirty(networkChange(K));
  await reconciler.runOnce();
  t.same(reads, [K], 'read once it takes part');
  t.same(await macsOn(dp, 4096), ['00:00:00:00:00:00', '02:42:0a:14:00:02', '02:42:0a:14:00:03'], 'every peer endpoint and the flood entry');

  // the container goes: the driver deletes the record, then the network leaves the set
  await state.deleteEndpoint(K, 'k0'.padEnd(64, '0'));
  local.remove(K, 'k0'.padEnd(64, '0'));
  reconciler.markDirty(networkChange(K));
  await reconciler.runOnce();
  t.same(await macsOn(dp, 4096), [], 'its remote entries go with its last endpoint here');
  t.ok(dp.links.get(vxlanName(4096)), 'the device stays');
  reconciler.markDirty(WHOLE_CLUSTER);
  t.same(await reconciler.runOnce(), { actions: 0, failed: 0 }, 'a whole pass agrees');
  t.same(reads, [K], 'and reads nothing of it');
});

t.test('a change marked while a pass waits for the store check gets a scoped pass of its own, not a whole one', async (t) => {
  const { state, dp, underlay } = await twoNodes();
  await state.createNetwork(network(L, 4097, '10.30.0.0/24'), 'a4097', 'A');
  await state.createEndpoint(endpoint(K, 'k0', 'A', '10.20.0.100'));
  await state.createEndpoint(endpoint(L, 'l0', 'A', '10.30.0.100'));
  let wholeReads = 0;
  const counting = Object.create(state, {
    listNetworks: { value: () => (wholeReads++, state.listNetworks()) },
  }) as ClusterState;
  // the store check (cluster/identity.ts) answers when the test lets it; open for the first pass
  let open: (() => void) | undefined;
  let asked: (() => void) | undefined;
  const gate = { closed: false, accept: true };
  const mayChange = async (): Promise<boolean> => {
    if (gate.closed) {
      asked?.();
      await new Promise<void>((resolve) => (open = resolve));
    }
    return gate.accept;
  };
  const reconciler = new Reconciler({ state: counting, dataplane: dp, underlay, node: 'A', local: { takesPart: () => true }, vxlanPort: 4789, intervalMs: 3_600_000, log: recording(), mayChange });
  await reconciler.start();
  const alive = setInterval(() => {}, 1000); // the loop's timers are unref'd
  t.teardown(() => (clearInterval(alive), reconciler.stop()));
  t.equal(wholeReads, 1, 'the first pass reads everything');

  await state.createEndpoint(endpoint(K, 'k1', 'B', '10.20.0.2'));
  await state.createEndpoint(endpoint(L, 'l1', 'B', '10.30.0.2'));
  gate.closed = true;
  const waiting = new Promise<void>((resolve) => (asked = resolve));
  const first = reconciler.passOver(networkChange(K));
  await waiting; // the pass for K waits for the store check
  const second = reconciler.passOver(networkChange(L));
  gate.closed = false;
  open?.();
  await first;
  await second;
  t.ok((await macsOn(dp, 4096)).includes('02:42:0a:14:00:02'), 'K programmed');
  t.ok((await macsOn(dp, 4097)).includes('02:42:0a:1e:00:02'), 'L programmed');
  t.equal(wholeReads, 1, 'both passes were scoped: nothing read the whole store');

  // a refused store skips the pass; the change waits for the next one, still scoped
  await state.createEndpoint(endpoint(L, 'l2', 'B', '10.30.0.3'));
  gate.accept = false;
  await reconciler.passOver(networkChange(L));
  t.notOk((await macsOn(dp, 4097)).includes('02:42:0a:1e:00:03'), 'refused: nothing changed');
  gate.accept = true;
  await reconciler.passOver(networkChange(K));
  t.ok((await macsOn(dp, 4097)).includes('02:42:0a:1e:00:03'), 'the skipped change to L is taken by the next pass');
  t.equal(wholeReads, 1, 'still without a whole read');
});
