/**
 * Several nodes on one shared store, with fake kernels and fake engines:
 * replication of networks through the engines, cluster-wide IPAM, remote
 * forwarding entries, node loss and removal everywhere.
 */
import t, { type Test } from 'tap';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import { FakeDockerEngine } from '../../src/engine/fake-engine.js';
import { MemoryKvStore } from '../../src/store/memory-kv-store.js';
import { nodePath } from '../../src/store/paths.js';
import { type Harness, harness } from './helpers.js';

interface Node {
  h: Harness;
  engine: FakeDockerEngine;
  dp: FakeDataplane;
}

/** Lost peers' entries are kept this long (--peer-grace-ms), short for the test. */
const GRACE_MS = 1500;

const cluster = async (names: string[], args: string[] = []): Promise<{ kv: MemoryKvStore; nodes: Record<string, Node> }> => {
  const kv = new MemoryKvStore();
  const nodes: Record<string, Node> = {};
  for (const [i, name] of names.entries()) {
    const dp = new FakeDataplane({ underlay: { ifname: 'eth0', ifindex: 2, address: `10.0.0.${i + 1}`, family: 4, mtu: 1500 } });
    const engine = new FakeDockerEngine();
    nodes[name] = { h: await harness({ kv, dp, engine, node: name, args }), engine, dp };
  }
  return { kv, nodes };
};

const settle = async (nodes: Record<string, Node>): Promise<void> => {
  // Replication and reconcile until nothing changes (bounded).
  for (let round = 0; round < 5; round++) {
    let changes = 0;
    for (const n of Object.values(nodes)) {
      const r = await n.h.app.replicator!.runOnce();
      changes += r.created + r.removed + r.named;
      changes += (await n.h.app.reconciler.runOnce()).actions;
    }
    if (changes === 0) return;
  }
};

const endpoint = async (n: Node, networkName: string, endpointId: string): Promise<string> => {
  const net = await n.engine.inspectNetwork(networkName);
  if (!net) throw new Error(`no network ${networkName} on this engine`);
  const held = n.engine.networks.get(net.id)!;
  const pool = (held as unknown as { poolIds: string[] }).poolIds[0];
  const addr = await n.h.call('IpamDriver.RequestAddress', { PoolID: pool, Address: '', Options: null });
  const ce = await n.h.call('NetworkDriver.CreateEndpoint', { NetworkID: net.id, EndpointID: endpointId, Interface: { Address: addr.json['Address'] } });
  if (ce.status !== 200) throw new Error(String(ce.json['Err']));
  held.net.containers++;
  return addr.json['Address'] as string;
};

t.test('create once, exists everywhere with the same VNI; remote entries both ways', async (t) => {
  const { nodes } = await cluster(['A', 'B', 'C'], ['--peer-grace-ms', String(GRACE_MS)]);
  const A = nodes['A']!;
  const B = nodes['B']!;
  const C = nodes['C']!;
  t.teardown(() => Promise.all(Object.values(nodes).map((n) => n.h.app.stop())));
  await A.engine.createNetwork({ name: 'ovr', driver: 'tsoverlay', ipamDriver: 'tsoverlay', subnets: [{ subnet: '10.20.0.0/24' }], options: {}, internal: false, ipv6: false, labels: {} });
  await settle(nodes);
  for (const n of [B, C]) {
    const net = await n.engine.inspectNetwork('ovr');
    t.ok(net, 'replicated');
    t.same(net?.subnets, [{ subnet: '10.20.0.0/24', gateway: '10.20.0.1' }]);
    t.ok(n.dp.links.get('tsvx-001000'), 'same VNI device');
  }
  const recs = await A.h.app.state.listNetworks();
  t.equal(recs.length, 1);
  t.equal(Object.keys(recs[0]!.aliases).length, 3);
  t.equal(recs[0]!.name, 'ovr');

  const ipA = await endpoint(A, 'ovr', 'aaaaaaaaaaaa01');
  const ipB = await endpoint(B, 'ovr', 'bbbbbbbbbbbb01');
  t.not(ipA, ipB);
  await settle(nodes);
  const fwdA = await A.dp.listForwarding('tsvx-001000');
  t.same(fwdA.neigh, [{ ip: ipB.split('/')[0], mac: '02:42:0a:14:00:03' }]);
  t.same(fwdA.fdb.map((e) => `${e.mac}>${e.dst}`).sort(), ['00:00:00:00:00:00>10.0.0.2', '02:42:0a:14:00:03>10.0.0.2']);
  const fwdB = await B.dp.listForwarding('tsvx-001000');
  t.same(fwdB.neigh, [{ ip: ipA.split('/')[0], mac: '02:42:0a:14:00:02' }]);
  t.same(await C.dp.listForwarding('tsvx-001000'), { fdb: [], neigh: [] }, 'C has the network but runs no container on it: no remote entries');
  const ipC = await endpoint(C, 'ovr', 'cccccccccccc01');
  await settle(nodes);
  const fwdC = await C.dp.listForwarding('tsvx-001000');
  t.equal(fwdC.fdb.length, 4, 'C, with a container there now, reaches both');
  t.ok((await A.dp.listForwarding('tsvx-001000')).neigh.some((n) => n.ip === ipC.split('/')[0]), 'and A reaches C');

  // Node loss: B's membership vanishes → its entries stay for the grace period, then every entry toward B goes.
  const lostAt = Date.now();
  await A.h.kv.commit([{ type: 'delete', path: nodePath('B'), version: -1 }]);
  await settle(nodes);
  if (Date.now() - lostAt < GRACE_MS) {
    t.same((await A.dp.listForwarding('tsvx-001000')).fdb.filter((e) => e.dst === '10.0.0.2').map((e) => `${e.mac}>${e.dst}`).sort(),
      ['00:00:00:00:00:00>10.0.0.2', '02:42:0a:14:00:03>10.0.0.2'], 'within the grace period: entries toward B kept');
  }
  const deadline = Date.now() + GRACE_MS + 5000;
  const towardB = async () =>
    [...(await A.dp.listForwarding('tsvx-001000')).fdb, ...(await C.dp.listForwarding('tsvx-001000')).fdb].filter((e) => e.dst === '10.0.0.2');
  while ((await towardB()).length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    await settle(nodes);
  }
  t.ok(Date.now() - lostAt >= GRACE_MS, `entries kept for the grace period (${Date.now() - lostAt} ms >= ${GRACE_MS} ms)`);
  t.same((await A.dp.listForwarding('tsvx-001000')).fdb.filter((e) => e.dst === '10.0.0.2'), [], 'after the grace period: gone');
  t.same((await C.dp.listForwarding('tsvx-001000')).fdb.map((e) => e.dst), ['10.0.0.1', '10.0.0.1']);
});

t.test('removed on a node that does not use it while a container elsewhere does: kept everywhere; removed everywhere once unused', async (t) => {
  const { nodes } = await cluster(['A', 'B']);
  const A = nodes['A']!;
  const B = nodes['B']!;
  t.teardown(() => Promise.all(Object.values(nodes).map((n) => n.h.app.stop())));
  await A.engine.createNetwork({ name: 'ovr', driver: 'tsoverlay', ipamDriver: 'tsoverlay', subnets: [{ subnet: '10.30.0.0/24' }], options: {}, internal: false, ipv6: false, labels: {} });
  await settle(nodes);
  await endpoint(B, 'ovr', 'bbbbbbbbbbbb02');
  // Docker removes it from A's engine whatever the plugin answers (it ignores DeleteNetwork errors)
  t.ok(await A.engine.removeNetwork('ovr'));
  await settle(nodes);
  t.ok(await B.engine.inspectNetwork('ovr'), 'kept on B, whose container uses it');
  t.equal((await A.h.app.state.listNetworks())[0]?.deleted, false, 'not marked removed in the store');
  t.ok(await A.engine.inspectNetwork('ovr'), 'A\'s engine has it again (replicated back)');
  t.ok(A.dp.links.get('tsvx-001000'), 'A\'s devices stay');
  // The container leaves; now a removal on A is a removal everywhere.
  const net = (await B.engine.inspectNetwork('ovr'))!;
  await B.h.call('NetworkDriver.DeleteEndpoint', { NetworkID: net.id, EndpointID: 'bbbbbbbbbbbb02' });
  B.engine.networks.get(net.id)!.net.containers = 0;
  t.ok(await A.engine.removeNetwork('ovr'));
  await settle(nodes);
  t.notOk(await A.engine.inspectNetwork('ovr'), 'gone on A');
  t.notOk(await B.engine.inspectNetwork('ovr'), 'gone on B');
  t.same(await A.h.app.state.listNetworks(), []);
  t.same((await A.h.app.state.listPools()).pools, [], 'pool released by the last node');
  t.match(await A.h.app.state.listTombstones(), [{ vni: 4096 }], 'a tombstone records the removal');
  t.notOk(A.dp.links.get('tsvx-001000'));
  t.notOk(B.dp.links.get('tsvx-001000'));
});

t.test('created separately on two nodes with the same subnet: one overlay', async (t) => {
  const { nodes } = await cluster(['A', 'B']);
  const A = nodes['A']!;
  const B = nodes['B']!;
  t.teardown(() => Promise.all(Object.values(nodes).map((n) => n.h.app.stop())));
  const spec = { name: 'same', driver: 'tsoverlay', ipamDriver: 'tsoverlay', subnets: [{ subnet: '10.40.0.0/24' }], options: {}, internal: false, ipv6: false, labels: {} };
  await A.engine.createNetwork(spec);
  await B.engine.createNetwork(spec);
  await settle(nodes);
  const recs = await A.h.app.state.listNetworks();
  t.equal(recs.length, 1);
  t.equal(Object.keys(recs[0]!.aliases).length, 2);
  // Same subnet twice on one engine is still an overlap.
  await t.rejects(A.engine.createNetwork({ ...spec, name: 'again' }), /overlaps 10.40.0.0\/24, already used by another tsoverlay network on this node/);
});

t.test('concurrent endpoints on every node get unique addresses', async (t) => {
  const { nodes } = await cluster(['A', 'B', 'C']);
  t.teardown(() => Promise.all(Object.values(nodes).map((n) => n.h.app.stop())));
  await nodes['A']!.engine.createNetwork({ name: 'ovr', driver: 'tsoverlay', ipamDriver: 'tsoverlay', subnets: [{ subnet: '10.50.0.0/24' }], options: {}, internal: false, ipv6: false, labels: {} });
  await settle(nodes);
  const ips = await Promise.all(
    Object.entries(nodes).flatMap(([name, n]) => Array.from({ length: 10 }, (_, i) => endpoint(n, 'ovr', `${name.toLowerCase()}${'e'.repeat(10)}${i.toString().padStart(2, '0')}`))),
  );
  t.equal(new Set(ips).size, 30);
});

t.test('a second live node with the same name is refused', async (t) => {
  const kv = new MemoryKvStore();
  const a = await harness({ kv, node: 'dup', dp: new FakeDataplane({ underlay: { ifname: 'eth0', ifindex: 2, address: '10.0.0.1', family: 4, mtu: 1500 } }) });
  t.teardown(() => a.app.stop());
  // The same store seen through another session (another live process).
  const otherSession = Object.create(kv, { sessionId: { value: () => 'other' } }) as MemoryKvStore;
  await t.rejects(
    harness({ kv: otherSession, node: 'dup', dp: new FakeDataplane({ underlay: { ifname: 'eth0', ifindex: 2, address: '10.0.0.2', family: 4, mtu: 1500 } }) }),
    /node name "dup" is held by another live tsoverlay node \(address 10.0.0.1/,
  );
});

/** Nodes A and B with network `ovr` (created on A), one endpoint of B and one of A (A takes part) in it; settled. */
const twoNodesOneEndpoint = async (t: Test, subnet: string, endpointId: string): Promise<{ A: Node; B: Node; ipB: string }> => {
  const { nodes } = await cluster(['A', 'B']);
  const A = nodes['A']!;
  const B = nodes['B']!;
  t.teardown(() => Promise.all(Object.values(nodes).map((n) => n.h.app.stop())));
  await A.engine.createNetwork({ name: 'ovr', driver: 'tsoverlay', ipamDriver: 'tsoverlay', subnets: [{ subnet }], options: {}, internal: false, ipv6: false, labels: {} });
  await settle(nodes);
  const ipB = (await endpoint(B, 'ovr', endpointId)).split('/')[0]!;
  await endpoint(A, 'ovr', `a${endpointId.slice(1)}`);
  await settle(nodes);
  return { A, B, ipB };
};

t.test('forwarding entries are read back only when they may have changed; hand-made drift goes in the next full pass', async (t) => {
  const { A, B, ipB } = await twoNodesOneEndpoint(t, '10.40.0.0/24', 'bbbbbbbbbbbb03');
  const list = A.dp.listForwarding.bind(A.dp);
  let dumps = 0;
  A.dp.listForwarding = (vxlan: string) => (dumps++, list(vxlan));
  const reads = () => dumps;
  const has = async () => (await list('tsvx-001000')).neigh.some((n) => n.ip === ipB);
  t.ok(await has(), 'A has the entry for B\'s endpoint');

  // Somebody removes it by hand; a pass triggered by an unrelated change does not look.
  const mac = (await list('tsvx-001000')).neigh.find((n) => n.ip === ipB)!.mac;
  await A.dp.deleteNeigh('tsvx-001000', { ip: ipB, mac });
  const before = reads();
  await A.h.app.reconciler.runOnce();
  t.equal(reads(), before, 'unchanged store: no dump');
  t.notOk(await has(), 'not repaired yet');

  // A store change for this network: its entries are read back and repaired.
  await endpoint(B, 'ovr', 'bbbbbbbbbbbb04');
  await A.h.app.reconciler.runOnce();
  t.ok(reads() > before, 'changed store: dumped');
  t.ok(await has(), 'repaired with the change');

  // Drift again, and no change: the next full pass (resync interval) repairs it.
  await A.dp.deleteNeigh('tsvx-001000', { ip: ipB, mac });
  (A.h.app.reconciler as unknown as { fullPassAt: number }).fullPassAt = -Infinity; // the interval has passed
  await A.h.app.reconciler.runOnce();
  t.ok(await has(), 'repaired by the full pass');
});

t.test('a full pass reads all entries in one go; a VXLAN device made again is refilled without reading it', async (t) => {
  const { A, ipB } = await twoNodesOneEndpoint(t, '10.41.0.0/24', 'bbbbbbbbbbbb05');
  const reads = { one: 0, all: 0 };
  const one = A.dp.listForwarding.bind(A.dp);
  const all = A.dp.listAllForwarding.bind(A.dp);
  A.dp.listForwarding = (vxlan: string) => (reads.one++, one(vxlan));
  A.dp.listAllForwarding = () => (reads.all++, all());
  const full = async () => {
    (A.h.app.reconciler as unknown as { fullPassAt: number }).fullPassAt = -Infinity; // the interval has passed
    return A.h.app.reconciler.runOnce();
  };

  t.same(await full(), { actions: 0, failed: 0 }, 'converged');
  t.same(reads, { one: 0, all: 1 }, 'one host-wide read');

  await A.dp.deleteLink('tsvx-001000');
  const r = await full();
  t.equal(r.failed, 0);
  t.same(reads, { one: 0, all: 1 }, 'the new device is not read back');
  t.ok((await one('tsvx-001000')).neigh.some((n) => n.ip === ipB), 'its entries are back');
});

/** Poll until `ok()` holds; fail with `what` after the deadline. */
const waitFor = async (what: string, ok: () => Promise<boolean>, timeoutMs = 5000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

t.test('the two flows of docs/architecture.md with the loops running: store watches and engine events alone carry them', async (t) => {
  // No periodic pass within the test: only watches, engine events and Docker calls move anything.
  const { nodes } = await cluster(['A', 'B'], ['--resync-interval-ms', '86400000']);
  const A = nodes['A']!;
  const B = nodes['B']!;
  for (const n of [A, B]) await n.h.app.start();
  t.teardown(() => Promise.all([A, B].map((n) => n.h.app.stop())));

  // (a) network create on A → devices on B
  await A.engine.createNetwork({ name: 'ovr', driver: 'tsoverlay', ipamDriver: 'tsoverlay', subnets: [{ subnet: '10.60.0.0/24' }], options: {}, internal: false, ipv6: false, labels: {} });
  await waitFor("B's engine has the network and B's kernel its devices", async () => !!(await B.engine.inspectNetwork('ovr')) && B.dp.links.has('tsvx-001000'));
  t.pass('network replicated to B and its devices made there');

  // (b) container join on A → reachable from B, which runs a container there too (only then does B follow the network's endpoints)
  const ipB = (await endpoint(B, 'ovr', 'bbbbbbbbbbbb07')).split('/')[0]!;
  const ipA = (await endpoint(A, 'ovr', 'aaaaaaaaaaaa07')).split('/')[0]!;
  // A's first endpoint there waited for A's pass over the network: B's container is programmed on A already
  t.ok((await A.dp.listForwarding('tsvx-001000')).neigh.some((n) => n.ip === ipB), "A's first endpoint returned with B's container programmed");
  await waitFor("B's VXLAN device has the neighbour and FDB entries of A's container", async () => {
    const fwd = await B.dp.listForwarding('tsvx-001000');
    return fwd.neigh.some((n) => n.ip === ipA) && fwd.fdb.some((e) => e.dst === '10.0.0.1' && e.mac !== '00:00:00:00:00:00');
  });
  t.pass("A's container reachable from B");
});
