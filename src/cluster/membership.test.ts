import t from 'tap';
import { silentLog } from '../log.js';
import type { NodeRecord } from '../model.js';
import { ClusterState } from '../store/cluster-state.js';
import { MemoryKvStore } from '../store/memory-kv-store.js';
import { registerNode, reregister } from './membership.js';

const rec = (address: string, version = '1.0.0'): NodeRecord => ({
  node: 'n1', address, vxlanPort: 4789, hostname: 'h', version, startedAt: '2026-12-04T00:00:00Z',
});

t.test('a resumed session rewrites its node record: a new advertise address or version reaches the peers', async (t) => {
  const kv = new MemoryKvStore();
  const state = new ClusterState(kv);
  await state.init();
  await registerNode(state, rec('10.0.0.1'), silentLog, { waitForOwnMs: 0 });
  t.match(await state.listNodes(), [{ address: '10.0.0.1' }], 'registered');
  // the same session (a plugin restarted with --session-file resumes it), another address and version
  await registerNode(state, rec('10.0.0.9', '1.1.0'), silentLog, { waitForOwnMs: 0 });
  t.match(await state.listNodes(), [{ address: '10.0.0.9', version: '1.1.0' }], 'the record now has the current address and version');
  await registerNode(state, rec('10.0.0.9', '1.1.0'), silentLog, { waitForOwnMs: 0 });
  t.equal((await state.nodeHolder('n1'))?.version, 1, 'an unchanged record is not written again');
});

t.test('after a new session the node registers again, retried until it lands, unless a newer session took over', async (t) => {
  let calls = 0;
  const flaky = async () => {
    calls++;
    if (calls < 3) throw new Error('cluster store unavailable');
  };
  const t0 = Date.now();
  t.equal(await reregister(flaky, { current: () => true, log: silentLog, retryMs: 20 }), true, 'registered');
  t.equal(calls, 3, 'on the third try');
  t.ok(Date.now() - t0 >= 40, 'waiting between tries');
  let live = true;
  let tries = 0;
  const never = async () => {
    tries++;
    live = false; // a newer session arrives meanwhile
    throw new Error('no');
  };
  t.equal(await reregister(never, { current: () => live, log: silentLog, retryMs: 1 }), false, 'given up for the newer session');
  t.equal(tries, 1);
});

t.test('a node that registers again removes the record of it being gone', async (t) => {
  const kv = new MemoryKvStore();
  const state = new ClusterState(kv);
  await state.init();
  t.ok(await state.nodes.markGone({ node: 'n1', since: '2026-12-05T10:00:00.000Z', by: 'n2' }), 'seen gone by the collector');
  await state.nodes.markGone({ node: 'n9', since: '2026-12-05T10:00:00.000Z', by: 'n2' });
  await registerNode(state, rec('10.0.0.1'), silentLog, { waitForOwnMs: 0 });
  t.same(await state.nodes.goneNames(), ['n9'], 'its own record is gone, another node\'s stays');
  await state.nodes.clearGone('n9');
  const failing = Object.create(state.nodes, { clearGone: { value: () => Promise.reject(new Error('cluster store unavailable')) } }) as ClusterState['nodes'];
  const flaky = Object.create(state, { nodes: { value: failing } }) as ClusterState;
  await registerNode(flaky, rec('10.0.0.1'), silentLog, { waitForOwnMs: 0 });
  t.pass('a failed removal does not fail the registration (the collector removes it)');
});
