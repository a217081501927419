import t from 'tap';
import { silentLog } from '../log.js';
import type { NodeRecord } from '../model.js';
import { ClusterState } from '../store/cluster-state.js';
import { MemoryKvStore } from '../store/memory-kv-store.js';
import { registerNode } from './membership.js';

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
