import t from 'tap';
import { ClusterState } from '../store/cluster-state.js';
import { MemoryKvStore } from '../store/memory-kv-store.js';
import { parseCidr } from '../net/ip.js';
import { GATEWAY_REQUEST, Ipam } from './ipam.js';

const setup = async (opts: { defaultPool?: string; size?: number } = {}) => {
  const kv = new MemoryKvStore();
  const state = new ClusterState(kv);
  await state.init();
  const ipam = new Ipam({
    state,
    config: { node: 'n1', defaultPool: parseCidr(opts.defaultPool ?? '10.128.0.0/9')!, defaultPoolSize: opts.size ?? 24 },
  });
  return { kv, state, ipam };
};
const v4 = (pool = '', subPool = '') => ({ addressSpace: 'tsoverlay-local', pool, subPool, options: {}, v6: false });
const gw = { RequestAddressType: GATEWAY_REQUEST };

t.test('requested pool, gateway, endpoints, release', async (t) => {
  const { ipam, state } = await setup();
  const p = await ipam.requestPool(v4('10.20.0.0/24'));
  t.same(p, { poolId: 'tsoverlay-local:10.20.0.0_24', pool: '10.20.0.0/24' });
  t.equal(await ipam.requestAddress({ poolId: p.poolId, address: '', options: gw }), '10.20.0.1/24');
  t.equal(await ipam.requestAddress({ poolId: p.poolId, address: '', options: {} }), '10.20.0.2/24');
  t.equal(await ipam.requestAddress({ poolId: p.poolId, address: '10.20.0.50', options: {} }), '10.20.0.50/24');
  t.equal(await ipam.requestAddress({ poolId: p.poolId, address: '', options: {} }), '10.20.0.3/24');
  await ipam.releaseAddress(p.poolId, '10.20.0.2');
  await ipam.releaseAddress(p.poolId, '10.20.0.2'); // idempotent
  t.equal(await ipam.requestAddress({ poolId: p.poolId, address: '', options: {} }), '10.20.0.2/24');
  await ipam.releasePool(p.poolId);
  await ipam.releasePool(p.poolId);
  t.same((await state.listPools()).pools, []);
});

t.test('fixed address errors', async (t) => {
  const { ipam } = await setup();
  const p = await ipam.requestPool(v4('10.20.0.0/24'));
  await ipam.requestAddress({ poolId: p.poolId, address: '10.20.0.9', options: {} });
  await t.rejects(ipam.requestAddress({ poolId: p.poolId, address: '10.20.0.9', options: {} }), { code: 'ADDRESS_IN_USE', message: /10.20.0.9 is already in use/ });
  await t.rejects(ipam.requestAddress({ poolId: p.poolId, address: '10.21.0.9', options: {} }), { code: 'ADDRESS_OUT_OF_RANGE' });
  await t.rejects(ipam.requestAddress({ poolId: p.poolId, address: 'fd00::1', options: {} }), { code: 'INVALID_REQUEST' });
  await t.rejects(ipam.requestAddress({ poolId: 'tsoverlay-local:10.99.0.0_24', address: '', options: {} }), { code: 'POOL_NOT_FOUND' });
});

t.test('ip-range: automatic addresses from the sub-pool, gateway and --ip from the pool', async (t) => {
  const { ipam } = await setup();
  const p = await ipam.requestPool(v4('10.60.0.0/16', '10.60.1.0/24'));
  t.equal(await ipam.requestAddress({ poolId: p.poolId, address: '', options: gw }), '10.60.0.1/16');
  t.equal(await ipam.requestAddress({ poolId: p.poolId, address: '10.60.0.10', options: {} }), '10.60.0.10/16');
  t.equal(await ipam.requestAddress({ poolId: p.poolId, address: '', options: {} }), '10.60.1.1/16');
  await t.rejects(ipam.requestPool(v4('', '10.60.1.0/24')), /--ip-range needs --subnet/);
  await t.rejects(ipam.requestPool(v4('10.70.0.0/16', '10.71.0.0/24')), /is not inside --subnet/);
});

t.test('overlaps are refused and change nothing', async (t) => {
  const { ipam, state } = await setup();
  await ipam.requestPool(v4('10.20.0.0/16'));
  const before = await state.listPools();
  await t.rejects(ipam.requestPool(v4('10.20.5.0/24')), { code: 'POOL_OVERLAP', message: /overlaps 10.20.0.0\/16/ });
  t.same(await state.listPools(), before);
  // Another address space may reuse the range.
  t.ok(await ipam.requestPool({ ...v4('10.20.5.0/24'), addressSpace: 'tsoverlay-global' }));
  await t.rejects(ipam.requestPool({ ...v4('10.1.0.0/24'), addressSpace: 'LocalDefault' }), /unknown address space "LocalDefault"/);
});

t.test('default pools: distinct each time, exhaustion is a clear error', async (t) => {
  const { ipam } = await setup({ defaultPool: '10.200.0.0/23', size: 24 });
  const a = await ipam.requestPool(v4());
  const b = await ipam.requestPool(v4());
  t.equal(a.pool, '10.200.0.0/24');
  t.equal(b.pool, '10.200.1.0/24');
  await t.rejects(ipam.requestPool(v4()), { code: 'POOL_EXHAUSTED', message: /give the network a --subnet/ });
  await t.rejects(ipam.requestPool({ ...v4(), v6: true }), /no default IPv6 pool/);
});

t.test('address exhaustion', async (t) => {
  const { ipam } = await setup();
  const p = await ipam.requestPool(v4('10.30.0.0/30'));
  t.equal(await ipam.requestAddress({ poolId: p.poolId, address: '', options: gw }), '10.30.0.1/30');
  t.equal(await ipam.requestAddress({ poolId: p.poolId, address: '', options: {} }), '10.30.0.2/30');
  await t.rejects(ipam.requestAddress({ poolId: p.poolId, address: '', options: {} }), { code: 'POOL_EXHAUSTED' });
});

t.test('IPv6 pools', async (t) => {
  const { ipam } = await setup();
  const p = await ipam.requestPool({ ...v4('fd00:60::/64'), v6: true });
  t.equal(await ipam.requestAddress({ poolId: p.poolId, address: '', options: gw }), 'fd00:60::1/64');
  t.equal(await ipam.requestAddress({ poolId: p.poolId, address: 'FD00:60::0005', options: {} }), 'fd00:60::5/64');
  t.equal(await ipam.requestAddress({ poolId: p.poolId, address: '', options: {} }), 'fd00:60::2/64');
  await t.rejects(ipam.requestPool({ ...v4('10.0.0.0/24'), v6: true }), /is not an IPv6 subnet/);
});

t.test('concurrent requests get unique addresses', async (t) => {
  const { ipam } = await setup();
  const p = await ipam.requestPool(v4('10.40.0.0/24'));
  const got = await Promise.all(Array.from({ length: 50 }, () => ipam.requestAddress({ poolId: p.poolId, address: '', options: {} })));
  t.equal(new Set(got).size, 50);
});
