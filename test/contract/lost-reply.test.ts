/**
 * Writes whose reply is lost (issue 14): the request reaches ZooKeeper and is
 * applied, but the connection breaks before the client hears of it. The
 * retry must recognise the write as its own (the claim token) instead of
 * reporting a conflict, and the store must hold it once. A real ZooKeeper
 * behind a CuttableLink; needs TSOVERLAY_IT=1.
 */
import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import { silentLog } from '../../src/log.js';
import { asPoolId, type PoolRecord } from '../../src/model.js';
import { ClusterState } from '../../src/store/cluster-state.js';
import { ZkKvStore } from '../../src/store/zk-kv-store.js';
import { CuttableLink } from './cuttable-link.js';
import { withZooKeeper } from './zk-server.js';

withZooKeeper((zk) => {
  const open = async (t: Test): Promise<{ link: CuttableLink; state: ClusterState; direct: ClusterState }> => {
    const server = zk();
    const chroot = `/lost-${randomBytes(4).toString('hex')}`;
    const link = await CuttableLink.open(server.port);
    t.teardown(() => link.close());
    const kv = await ZkKvStore.open({ servers: [link.address], chroot, sessionTimeoutMs: 8000, log: silentLog });
    t.teardown(() => kv.close());
    const other = await ZkKvStore.open({ servers: [server.address], chroot, sessionTimeoutMs: 8000, log: silentLog });
    t.teardown(() => other.close());
    const state = new ClusterState(kv);
    await state.init();
    return { link, state, direct: new ClusterState(other) };
  };

  const pool = (id: string, cidr: string): PoolRecord => ({
    id: asPoolId(id), space: 'tsoverlay-local', family: 4, pool: cidr, requested: true, users: ['a'], options: {}, createdAt: new Date().toISOString(),
  });

  t.test('an address claim whose reply is lost succeeds on retry, and the address is held once', async (t) => {
    const { link, state, direct } = await open(t);
    const { version } = await state.listPools();
    t.ok(await state.createPool(pool('tsoverlay-local:10.9.0.0_24', '10.9.0.0/24'), version), 'pool created');

    link.loseReplyContaining('10.9.0.7');
    const t0 = Date.now();
    const ok = await state.claimAddress(asPoolId('tsoverlay-local:10.9.0.0_24'), { ip: '10.9.0.7', kind: 'endpoint', node: 'a' });
    t.equal(ok, true, `the claim succeeded after the lost reply (${Date.now() - t0} ms)`);
    t.same(await direct.claimedAddresses(asPoolId('tsoverlay-local:10.9.0.0_24')), ['10.9.0.7'], 'the address is held once');
    t.match(await direct.getAddress(asPoolId('tsoverlay-local:10.9.0.0_24'), '10.9.0.7'), { node: 'a', kind: 'endpoint' }, 'by its owner');

    // a real conflict stays one: another request for the same address is refused
    t.equal(await state.claimAddress(asPoolId('tsoverlay-local:10.9.0.0_24'), { ip: '10.9.0.7', kind: 'endpoint', node: 'a' }), false,
      'a second request for the same address (another token) is refused');
    t.equal(await direct.claimAddress(asPoolId('tsoverlay-local:10.9.0.0_24'), { ip: '10.9.0.7', kind: 'endpoint', node: 'b' }), false,
      'and so is another node');
  });

  t.test('a pool create whose reply is lost succeeds on retry instead of clashing with itself', async (t) => {
    const { link, state, direct } = await open(t);
    const { version } = await state.listPools();
    link.loseReplyContaining('10.9.1.0');
    const ok = await state.createPool(pool('tsoverlay-local:10.9.1.0_24', '10.9.1.0/24'), version);
    t.equal(ok, true, 'the pool create succeeded after the lost reply');
    const pools = (await direct.listPools()).pools.map((p) => p.id);
    t.same(pools, ['tsoverlay-local:10.9.1.0_24'], 'one pool in the store');
    const again = await state.createPool(pool('tsoverlay-local:10.9.1.0_24', '10.9.1.0/24'), version);
    t.equal(again, false, 'a second create at the old version (another request) is refused as before');
  });
});
