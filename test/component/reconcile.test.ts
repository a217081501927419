/**
 * Restart and reconcile on fakes: a restarted plugin (same store, same
 * kernel) changes nothing; lost devices come back; orphans go.
 */
import t from 'tap';
import { waitFor } from '../lab/wait.js';
import { bridgeName, hostIfName, vxlanName } from '../../src/dataplane/names.js';
import { type Metrics, noMetrics } from '../../src/metrics/metrics.js';
import { MemoryKvStore } from '../../src/store/memory-kv-store.js';
import { EP, EP2, NET, NET2, attach, createNetwork, harness, networkOf } from './helpers.js';

t.test('restart over a converged kernel changes nothing', async (t) => {
  const first = await harness();
  const { poolId } = await createNetwork(first, { subnet: '10.20.0.0/24' });
  await attach(first, poolId);
  first.dp.moveToSandbox(`tsc${EP.slice(0, 11)}`);
  await first.app.reconciler.stop();
  const changes = first.dp.changes().length;

  const second = await harness({ kv: first.kv, dp: first.dp });
  const r = await second.app.reconciler.start();
  t.teardown(() => second.app.reconciler.stop());
  t.same(r, { actions: 0, failed: 0 });
  t.equal(second.dp.changes().length, changes, 'no kernel change');
});

t.test('missing devices are recreated, drift repaired, orphans kept until removed through Docker (bridge mode)', async (t) => {
  const h = await harness();
  const { poolId } = await createNetwork(h, { subnet: '10.20.0.0/24', generic: { 'tsoverlay.mode': 'bridge' } });
  await attach(h, poolId);
  await h.app.reconciler.stop();
  // Somebody deleted the bridge (the host veth loses its master) and left junk behind.
  await h.dp.deleteLink(bridgeName(4096));
  await h.dp.ensureNetwork({ layout: 'bridge', vni: 7, bridge: 'tsbr-000007', vxlan: 'tsvx-000007', port: 4789, local: '10.0.0.2', underlayIndex: 2, mtu: 1450 });

  const again = await harness({ kv: h.kv, dp: h.dp, args: ['--resync-interval-ms', '1000'] });
  t.teardown(() => again.app.reconciler.stop());
  const r = await again.app.reconciler.runOnce();
  t.equal(r.failed, 0);
  t.ok(h.dp.links.get(bridgeName(4096)));
  t.equal(h.dp.links.get(vxlanName(4096))?.masterIndex, h.dp.links.get(bridgeName(4096))?.index);
  t.equal(h.dp.links.get(hostIfName(EP))?.masterIndex, h.dp.links.get(bridgeName(4096))?.index);
  // absence is not deletion: devices of a network the store does not know are kept ...
  t.ok(h.dp.links.get('tsbr-000007'), 'a stray network\'s bridge is kept while its network was never removed');
  t.ok(h.dp.links.get('tsvx-000007'), 'and its VXLAN device');
  t.same(await again.app.reconciler.runOnce(), { actions: 0, failed: 0 }, 'second pass finds nothing');
  t.equal((await h.kv.get('/vnis/7'))?.data, 'kept-by:node1', 'the kept device\'s VNI is held, so no new network takes it');
  // ... until the store says it was removed through Docker (a tombstone of a VNI nobody claims)
  await h.kv.commit([{ type: 'delete', path: '/vnis/7', version: -1 }]);
  await h.kv.commit([{ type: 'create', path: '/tombstones/stray', data: JSON.stringify({ network: 'stray', vni: 7, deletedAt: new Date().toISOString(), by: 'node9' }) }]);
  const gone = await waitFor(async () => (await again.app.reconciler.runOnce(), !h.dp.links.get('tsbr-000007') && !h.dp.links.get('tsvx-000007')), {
    what: 'the next full pass to delete the tombstoned network\'s devices', timeoutMs: 10_000, intervalMs: 50,
  }).then(() => true, () => false);
  t.ok(gone, 'a tombstoned network\'s bridge and VXLAN device are deleted by the next full pass');
});

t.test('a failing action is reported and retried', async (t) => {
  const h = await harness();
  await createNetwork(h, { subnet: '10.20.0.0/24' });
  await h.dp.deleteLink(vxlanName(4096));
  h.dp.failNext('ensureNetwork', new Error('transient'));
  t.same(await h.app.reconciler.runOnce(), { actions: 1, failed: 1 });
  t.same(await h.app.reconciler.runOnce(), { actions: 1, failed: 0 });
  t.ok(h.dp.links.get(vxlanName(4096)));
  await h.app.reconciler.stop();
});

t.test('macvlan mode: a restart leaves a joined endpoint alone; a lost VXLAN device comes back with its host macvlan', async (t) => {
  const first = await harness();
  const { poolId, res } = await createNetwork(first, { subnet: '10.20.0.0/24', generic: { 'tsoverlay.mode': 'macvlan' } });
  t.same(res.json, {}, 'created');
  const { join } = await attach(first, poolId);
  const ctr = `tsc${EP.slice(0, 11)}`;
  t.match(join.json, { InterfaceName: { SrcName: ctr } });
  const vx = first.dp.links.get(vxlanName(4096));
  t.equal(vx?.masterIndex, undefined, 'the VXLAN device is on no bridge');
  t.match(first.dp.links.get(bridgeName(4096)), { kind: 'macvlan', lowerIndex: vx?.index });
  t.match(first.dp.links.get(ctr), { kind: 'macvlan', lowerIndex: vx?.index, up: false });
  t.notOk(first.dp.links.get(hostIfName(EP)), 'no veth');
  first.dp.moveToSandbox(ctr);
  await first.app.reconciler.stop();
  const changes = first.dp.changes().length;

  const second = await harness({ kv: first.kv, dp: first.dp });
  t.teardown(() => second.app.reconciler.stop());
  t.same(await second.app.reconciler.start(), { actions: 0, failed: 0 }, 'restart: nothing to do');
  t.equal(second.dp.changes().length, changes, 'no kernel change');
  t.ok(second.dp.sandboxed.has(ctr), "the container's macvlan is untouched");

  // The VXLAN device deleted behind our back takes every macvlan on it along.
  await second.dp.deleteLink(vxlanName(4096));
  t.notOk(second.dp.links.get(bridgeName(4096)), 'the host macvlan went with it');
  t.notOk(second.dp.sandboxed.has(ctr), "and so did the container's");
  await second.app.reconciler.stop();
  const third = await harness({ kv: first.kv, dp: first.dp }); // its first pass reads the whole kernel
  t.teardown(() => third.app.reconciler.stop());
  t.equal((await third.app.reconciler.runOnce()).failed, 0);
  t.match(third.dp.links.get(bridgeName(4096)), { kind: 'macvlan', lowerIndex: third.dp.links.get(vxlanName(4096))?.index });
  t.notOk(third.dp.links.get(ctr), 'the container interface is not made again: nothing could take it into the container');
  t.same(await third.app.reconciler.runOnce(), { actions: 0, failed: 0 }, 'second pass finds nothing');
});

t.test('--default-mode macvlan: networks without -o tsoverlay.mode are macvlan networks; -o tsoverlay.mode=bridge still makes a bridge', async (t) => {
  const h = await harness({ args: ['--default-mode', 'macvlan'] });
  t.teardown(() => h.app.reconciler.stop());
  await createNetwork(h, { subnet: '10.20.0.0/24' });
  t.match(h.dp.links.get(bridgeName(4096)), { kind: 'macvlan' });
  t.equal((await networkOf(h, NET))?.mode, 'macvlan', 'the mode is in the record, for every node');
  await createNetwork(h, { id: 'f'.repeat(64), subnet: '10.21.0.0/24', generic: { 'tsoverlay.mode': 'bridge' } });
  t.match(h.dp.links.get(bridgeName(4097)), { kind: 'bridge' });
  t.equal((await networkOf(h, 'f'.repeat(64)))?.mode, undefined);
});

t.test('a pass that cannot read the kernel acts on nothing; the next pass converges', async (t) => {
  const h = await harness();
  t.teardown(() => h.app.reconciler.stop());
  await createNetwork(h, { subnet: '10.20.0.0/24' });
  await h.dp.deleteLink(vxlanName(4096));
  const changes = h.dp.changes().length;
  h.dp.failNext('listOwnedLinks', new Error('netlink busy'));
  t.same(await h.app.reconciler.runOnce(), { actions: 0, failed: 1 });
  t.equal(h.dp.changes().length, changes, 'kernel left as is');
  t.same(await h.app.reconciler.runOnce(), { actions: 1, failed: 0 }, 'a full pass again: the device is back');
  t.ok(h.dp.links.get(vxlanName(4096)));
});

t.test('metrics: every pass with its result, and what a good pass programmed', async (t) => {
  const passes: Array<[string, number]> = [];
  const programmed: Array<{ fdb: number; neigh: number; links: number }> = [];
  const metrics: Metrics = {
    ...noMetrics,
    reconcilePass: (seconds, outcome, failed) => {
      t.ok(seconds >= 0, 'a duration');
      passes.push([outcome, failed]);
    },
    setProgrammed: (count) => programmed.push(count()),
  };
  const kv = new MemoryKvStore();
  const a = await harness({ kv, metrics, node: 'node1' });
  const b = await harness({ kv, node: 'node2' });
  t.teardown(() => Promise.all([a.app.reconciler.stop(), b.app.reconciler.stop()]));
  const { poolId } = await createNetwork(a, { subnet: '10.20.0.0/24' });
  await createNetwork(b, { subnet: '10.20.0.0/24', id: NET2 });
  // a container on node2: node1, with a container of its own there, programs its MAC, its address and a flood entry toward node2
  await attach(b, poolId, { net: NET2, ep: EP2 });
  await attach(a, poolId);
  passes.length = 0;
  const first = await a.app.reconciler.runOnce();
  t.equal(first.failed, 0, `node1's pass applied ${first.actions} actions`);
  t.same(passes.at(-1), ['ok', 0], 'an ok pass');
  t.same(programmed.at(-1), { fdb: 2, neigh: 1, links: 2 }, 'FDB entry and flood entry, one neighbour; VXLAN device and host macvlan');

  // node1 restarted over a kernel that lost the VXLAN device, whose re-creation fails once
  await a.app.reconciler.stop();
  await a.dp.deleteLink(vxlanName(4096));
  a.dp.failNext('ensureNetwork', new Error('transient'));
  const again = await harness({ kv, dp: a.dp, metrics, node: 'node1' });
  t.teardown(() => again.app.reconciler.stop());
  const before = programmed.length;
  const r = await again.app.reconciler.runOnce();
  t.ok(r.failed > 0, `the pass failed (${r.failed})`);
  t.same(passes.at(-1), ['failed', r.failed], 'a failed pass, with its failed actions');
  t.equal(programmed.length, before, 'a failed pass sets no programmed counts');
});
