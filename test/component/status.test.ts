/**
 * `tsoverlay status` on fakes: nodes on one memory store with fake kernels
 * and engines; the report of a converged node, then of one whose kernel was
 * changed by hand (an FDB entry toward the wrong VTEP, a missing one), as
 * data, as text and as doctor's checks.
 */
import t from 'tap';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import { FakeDockerEngine } from '../../src/engine/fake-engine.js';
import { loadConfig } from '../../src/config.js';
import { statusChecks } from '../../src/ops/doctor-command.js';
import { readSnapshot } from '../../src/ops/status-read.js';
import { entryDifferences, statusReport } from '../../src/ops/status-model.js';
import { renderStatus } from '../../src/ops/status-render.js';
import { painter, table } from '../../src/ops/table.js';
import { MemoryKvStore } from '../../src/store/memory-kv-store.js';
import { nodePath } from '../../src/store/paths.js';
import { waitFor } from '../lab/wait.js';
import { type Harness, harness } from './helpers.js';

interface Node {
  h: Harness;
  engine: FakeDockerEngine;
  dp: FakeDataplane;
}

const cluster = async (names: string[]): Promise<{ kv: MemoryKvStore; nodes: Node[] }> => {
  const kv = new MemoryKvStore();
  const nodes: Node[] = [];
  for (const [i, name] of names.entries()) {
    const dp = new FakeDataplane({ underlay: { ifname: 'eth0', ifindex: 2, address: `10.0.0.${i + 1}`, family: 4, mtu: 1500 } });
    const engine = new FakeDockerEngine();
    // a short resync: the next pass after a second is a full one (it reads the kernel back)
    nodes.push({ h: await harness({ kv, dp, engine, node: name, args: ['--resync-interval-ms', '1000'] }), engine, dp });
  }
  return { kv, nodes };
};

const settle = async (nodes: Node[]): Promise<void> => {
  for (let round = 0; round < 5; round++) {
    let changes = 0;
    for (const n of nodes) {
      const r = await n.h.app.replicator!.runOnce();
      changes += r.created + r.removed + r.named + (await n.h.app.reconciler.runOnce()).actions;
    }
    if (changes === 0) return;
  }
};

const endpoint = async (n: Node, networkName: string, endpointId: string): Promise<string> => {
  const net = (await n.engine.inspectNetwork(networkName))!;
  const held = n.engine.networks.get(net.id)!;
  const pool = (held as unknown as { poolIds: string[] }).poolIds[0];
  const addr = await n.h.call('IpamDriver.RequestAddress', { PoolID: pool, Address: '', Options: null });
  const ce = await n.h.call('NetworkDriver.CreateEndpoint', { NetworkID: net.id, EndpointID: endpointId, Interface: { Address: addr.json['Address'] } });
  if (ce.status !== 200) throw new Error(String(ce.json['Err']));
  held.net.containers++;
  return addr.json['Address'] as string;
};

const report = (n: Node, kv: MemoryKvStore, me: string) =>
  readSnapshot({ state: n.h.app.state, kv, dataplane: n.dp, underlay: n.h.app.underlay, me, vxlanPort: 4789, now: () => Date.parse('2026-12-05T08:00:00Z') }).then(
    statusReport,
  );

t.test('a converged node, then an FDB entry toward the wrong VTEP and a missing one', async (t) => {
  const { kv, nodes } = await cluster(['A', 'B', 'C']);
  const [A, B, C] = nodes as [Node, Node, Node];
  t.teardown(() => Promise.all(nodes.map((n) => n.h.app.stop())));
  await A.engine.createNetwork({ name: 'ovr', driver: 'tsoverlay', ipamDriver: 'tsoverlay', subnets: [{ subnet: '10.20.0.0/24' }], options: {}, internal: false, ipv6: false, labels: {} });
  await settle(nodes);
  const ipA = await endpoint(A, 'ovr', 'aaaaaaaaaaaa01');
  const ipB = await endpoint(B, 'ovr', 'bbbbbbbbbbbb01');
  const ipC = await endpoint(C, 'ovr', 'cccccccccccc01');
  await settle(nodes);

  const ok = await report(A, kv, 'A');
  t.ok(ok.converged, 'converged after the reconciler ran');
  t.same(ok.devices, []);
  t.same(ok.forwarding, []);
  t.same(ok.nodes.map((n) => [n.name, n.vtep, n.state, n.self, n.version]), [
    ['A', '10.0.0.1', 'alive', true, '0.1.0'],
    ['B', '10.0.0.2', 'alive', false, '0.1.0'],
    ['C', '10.0.0.3', 'alive', false, '0.1.0'],
  ]);
  t.match(ok.networks, [{ names: ['ovr'], vni: 4096, subnets: ['10.20.0.0/24'], layout: 'macvlan', mtu: 1450, nodes: [{ node: 'A', endpoints: 1 }, { node: 'B', endpoints: 1 }, { node: 'C', endpoints: 1 }] }]);
  t.match(ok.endpoints, [{ network: 'ovr', id: 'aaaaaaaaaaaa01', ipv4: ipA }]);
  t.equal(ok.endpoints.length, 1, 'only this node\'s endpoints');
  const text = renderStatus(ok);
  t.match(text, /^NODE\s+VTEP\s+VERSION\s+STATE/m);
  t.match(text, /^A \*\s+10\.0\.0\.1\s+0\.1\.0\s+alive/m);
  t.match(text, /^ovr\s+4096\s+10\.20\.0\.0\/24\s+macvlan\s+1450\s+-\s+A\(1\) B\(1\) C\(1\)$/m);
  t.match(text, /converged: the kernel of A holds what the store asks for\n$/);
  t.notMatch(text, /Kernel vs store/);

  // by hand: B's container now "behind" a wrong VTEP, C's entry deleted
  const fwd = await A.dp.listForwarding('tsvx-001000');
  const macOf = (ip: string) => fwd.neigh.find((n) => n.ip === ip.split('/')[0])!.mac;
  await A.dp.addFdb('tsvx-001000', { mac: macOf(ipB), dst: '10.0.0.99' });
  t.ok(await A.dp.deleteFdb('tsvx-001000', { mac: macOf(ipC), dst: '10.0.0.3' }));
  const bad = await report(A, kv, 'A');
  t.notOk(bad.converged);
  t.same(bad.devices, []);
  t.same(
    bad.forwarding.map((d) => [d.problem, d.table, d.key, d.want, d.have]).sort(),
    [
      ['missing', 'fdb', macOf(ipC), '10.0.0.3', undefined],
      ['wrong-vtep', 'fdb', macOf(ipB), '10.0.0.2', '10.0.0.99'],
    ],
  );
  const badText = renderStatus(bad);
  t.match(badText, new RegExp(`^ovr\\s+tsvx-001000\\s+fdb ${macOf(ipB)}\\s+wrong-vtep\\s+10\\.0\\.0\\.2\\s+10\\.0\\.0\\.99$`, 'm'));
  t.match(badText, new RegExp(`^ovr\\s+tsvx-001000\\s+fdb ${macOf(ipC)}\\s+missing\\s+10\\.0\\.0\\.3\\s+-$`, 'm'));
  t.match(badText, /NOT converged: 2 differences on A/);
  const config = loadConfig(['--node-name', 'A'], {});
  const checks = statusChecks(bad, config, 1500, 4);
  const wrong = checks.find((c) => c.detail.includes('wrong VTEP'));
  t.equal(wrong?.status, 'fail');
  t.equal(wrong?.fix?.endsWith(`bridge fdb replace ${macOf(ipB)} dev tsvx-001000 dst 10.0.0.2 self permanent`), true, wrong?.fix ?? '');
  t.match(checks.find((c) => c.check === 'mtu'), { status: 'ok' });

  // the reconciler's next full pass repairs both; status agrees
  const repaired = await waitFor(async () => (await A.h.app.reconciler.runOnce(), (await report(A, kv, 'A')).converged), {
    what: 'a full reconcile pass to repair the entries', timeoutMs: 10_000, intervalMs: 100,
  }).then(() => true, () => false);
  t.ok(repaired, 'converged again after a full pass');

  // a node whose membership is gone, while its endpoint stays in the store
  await kv.commit([{ type: 'delete', path: nodePath('C'), version: -1 }]);
  const gone = await report(A, kv, 'A');
  t.match(gone.nodes.find((n) => n.name === 'C'), { state: 'gone', vtep: '', goneSince: null });
  t.equal(gone.nodes.find((n) => n.name === 'A')?.goneSince, undefined, 'a live node has no gone time');
  t.match(renderStatus(gone), /^C\s+-\s+-\s+gone \(since unknown\)\s+-\s+-$/m, 'no record of when yet: said so');
  t.notOk(gone.converged, 'A still holds entries toward C until its next pass');
  t.ok(gone.forwarding.every((d) => d.problem === 'extra' && (d.table === 'neigh' || d.have === '10.0.0.3')));

  // the collector's record of when it first saw C gone (5 min before the report)
  t.ok(await A.h.app.state.nodes.markGone({ node: 'C', since: '2026-12-05T07:55:00.123Z', by: 'A' }));
  const since = await report(A, kv, 'A');
  t.match(since.nodes.find((n) => n.name === 'C'), { state: 'gone', goneSince: '2026-12-05T07:55:00.123Z' });
  t.match(renderStatus(since), /^C\s+-\s+-\s+gone since 2026-12-05T07:55:00Z \(5m0s\)\s+-\s+-$/m, 'gone, since when, as STARTED shows times');
});

t.test('status reads only: neither the store nor the kernel changes', async (t) => {
  const { kv, nodes } = await cluster(['A']);
  const [A] = nodes as [Node];
  t.teardown(() => A.h.app.stop());
  await A.engine.createNetwork({ name: 'ovr', driver: 'tsoverlay', ipamDriver: 'tsoverlay', subnets: [{ subnet: '10.21.0.0/24' }], options: {}, internal: false, ipv6: false, labels: {} });
  await settle(nodes);
  await A.h.app.stop();
  const before = JSON.stringify(kv.snapshot());
  const changes = A.dp.changes().length;
  await report(A, kv, 'A');
  t.equal(JSON.stringify(kv.snapshot()), before, 'store unchanged');
  t.equal(A.dp.changes().length, changes, 'kernel unchanged');
});

t.test('entry differences from planForwarding actions', async (t) => {
  const d = entryDifferences('n', 'tsvx-000001', [
    { kind: 'addNeigh', vxlan: 'tsvx-000001', entry: { ip: '10.0.0.5', mac: '02:00:00:00:00:05' }, reason: 'MAC changed' },
    { kind: 'addFdb', vxlan: 'tsvx-000001', entry: { mac: '00:00:00:00:00:00', dst: '192.0.2.2' }, reason: 'remote endpoint' },
    { kind: 'deleteFdb', vxlan: 'tsvx-000001', entry: { mac: '00:00:00:00:00:00', dst: '192.0.2.9' }, reason: 'no longer in the store' },
    { kind: 'deleteNeigh', vxlan: 'tsvx-000001', entry: { ip: '10.0.0.6', mac: '02:00:00:00:00:06' }, reason: 'no longer in the store' },
  ]);
  t.same(
    d.map((x) => `${x.table} ${x.problem} ${x.key} ${x.want ?? '-'} ${x.have ?? '-'}`),
    ['neigh wrong-mac 10.0.0.5 02:00:00:00:00:05 -', 'neigh extra 10.0.0.6 - 02:00:00:00:00:06', 'fdb missing 00:00:00:00:00:00 192.0.2.2 -', 'fdb extra 00:00:00:00:00:00 - 192.0.2.9'],
    'the flood MAC collects VTEPs: a missing and an extra one, never a wrong one',
  );
});

t.test('tables align; colour only on a TTY without NO_COLOR', async (t) => {
  t.same(table(['A', 'BB'], [['xxx', 'y'], ['z', { text: 'ok', tone: 'ok' }]]), ['A    BB', 'xxx  y', 'z    ok']);
  t.equal(painter({ isTTY: false }, {})('ok', 'x'), 'x');
  t.equal(painter({ isTTY: true }, { NO_COLOR: '1' })('ok', 'x'), 'x');
  t.equal(painter({ isTTY: true }, {})('fail', 'x'), '\u001b[31mx\u001b[0m');
  t.same(table(['A', 'B'], [[{ text: 'ok', tone: 'ok' }, 'z']], painter({ isTTY: true }, {}))[1], '\u001b[32mok\u001b[0m  z');
});
