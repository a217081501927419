/**
 * The resolver's plumbing on fakes: Join gives each container one on-link
 * route to the resolver, the reconciler puts the address on bridges and the
 * reply routes in their table, and the firewall rules are ensured.
 */
import t from 'tap';
import { FakeFirewall } from '../../src/dataplane/fake-firewall.js';
import { RESOLVER_TABLE } from '../../src/reconcile/desired.js';
import { EP, EP2, NET, attach, createNetwork, harness } from './helpers.js';

const DNS = ['--dns-address', '169.254.53.53'];

t.test('join: one route to the resolver per container', async (t) => {
  const h = await harness({ args: DNS });
  t.teardown(() => h.app.stop());
  const { poolId } = await createNetwork(h, { subnet: '10.20.0.0/24' });
  const first = await attach(h, poolId);
  t.same(first.join.json['StaticRoutes'], [{ Destination: '169.254.53.53/32', RouteType: 1 }]);
  // A second endpoint of the same container (same sandbox) gets none: Docker would refuse a duplicate route.
  const addr = await h.call('IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: null });
  await h.call('NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: EP2, Interface: { Address: addr.json['Address'] } });
  const second = await h.call('NetworkDriver.Join', { NetworkID: NET, EndpointID: EP2, SandboxKey: '/var/run/docker/netns/5f07dccd1bf9' });
  t.equal(second.json['StaticRoutes'], undefined);
  // After a restart the plugin still knows the sandbox.
  const again = await harness({ kv: h.kv, dp: h.dp, args: DNS });
  t.teardown(() => again.app.stop());
  await again.app.driver.init();
  const third = await again.call('NetworkDriver.Join', { NetworkID: NET, EndpointID: EP2, SandboxKey: '/var/run/docker/netns/5f07dccd1bf9' });
  t.equal(third.json['StaticRoutes'], undefined);
  t.same((await again.call('NetworkDriver.Join', { NetworkID: NET, EndpointID: EP, SandboxKey: '/var/run/docker/netns/other' })).json['StaticRoutes'], [
    { Destination: '169.254.53.53/32', RouteType: 1 },
  ]);
});

t.test('reconcile: address on every bridge, reply routes in their table, firewall', async (t) => {
  const firewall = new FakeFirewall();
  const h = await harness({ args: DNS, firewall });
  t.teardown(() => h.app.stop());
  await createNetwork(h, { subnet: '10.20.0.0/24' });
  await h.app.reconciler.runOnce();
  t.match([...(h.dp.links.get('tsbr-001000')?.addresses ?? [])], ['169.254.53.53']);
  t.same(await h.dp.listTableRoutes(RESOLVER_TABLE), [{ dst: '10.20.0.0/24', dev: 'tsbr-001000', src: '169.254.53.53' }]);
  t.same(firewall.resolverInput, ['169.254.53.53']);
  t.same(await h.app.reconciler.runOnce(), { actions: 0, failed: 0 }, 'converged');
  await h.call('NetworkDriver.DeleteNetwork', { NetworkID: NET });
  await h.app.reconciler.runOnce();
  t.same(await h.dp.listTableRoutes(RESOLVER_TABLE), []);
});
