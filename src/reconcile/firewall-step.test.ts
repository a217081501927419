/** The firewall step of a reconcile pass, on a fake firewall and kernel. */
import t from 'tap';
import { FakeDataplane } from '../dataplane/fake-dataplane.js';
import { FakeFirewall } from '../dataplane/fake-firewall.js';
import { bridgeName, vxlanName } from '../dataplane/names.js';
import { silentLog } from '../log.js';
import { RESOLVER_RULE_PRIORITY, RESOLVER_TABLE } from './desired.js';
import { FirewallStep } from './firewall-step.js';
import { type PassState, newPassState, stopwatch } from './pass-state.js';

const pass = (): PassState =>
  newPassState({ full: true, previous: undefined, desired: { networks: [], endpoints: [], forwarding: new Map() }, observed: undefined, clock: stopwatch() });

t.test('checked when due, then not again until everyMs has passed', async (t) => {
  const firewall = new FakeFirewall();
  const dataplane = new FakeDataplane();
  const step = new FirewallStep({ firewall, dataplane, log: silentLog, everyMs: 60_000, dnsAddress: '169.254.53.53' });
  const p = pass();
  await step.start(p);
  t.equal(firewall.calls, 1, 'bridged traffic rule');
  t.same(firewall.resolverInput, ['169.254.53.53'], 'resolver input rule');
  t.same(dataplane.rules, [{ source: '169.254.53.53', table: RESOLVER_TABLE, priority: RESOLVER_RULE_PRIORITY }], 'replies into the resolver table');
  t.equal(p.failed, 0);
  t.equal(step.start(pass()), undefined, 'not due yet');
  t.equal(firewall.calls, 1);
});

t.test('without a resolver: only the bridged traffic rule', async (t) => {
  const firewall = new FakeFirewall();
  const dataplane = new FakeDataplane();
  await new FirewallStep({ firewall, dataplane, log: silentLog, everyMs: 0 }).start(pass());
  t.equal(firewall.calls, 1);
  t.same(firewall.resolverInput, []);
  t.same(dataplane.rules, []);
});

t.test('a failed check counts in the pass (never rejects) and is due again at the next pass', async (t) => {
  const firewall = new FakeFirewall();
  firewall.fail = new Error('iptables: resource busy');
  const step = new FirewallStep({ firewall, dataplane: new FakeDataplane(), log: silentLog, everyMs: 60_000 });
  const p = pass();
  await step.start(p);
  t.equal(p.failed, 1);
  firewall.fail = undefined;
  const next = pass();
  const again = step.start(next);
  t.ok(again, 'due again');
  await again;
  t.equal(next.failed, 0);
  t.equal(firewall.calls, 2);
});

const withMembers = (members: string[], port = 4789): PassState =>
  newPassState({
    full: false,
    previous: undefined,
    desired: { networks: [], endpoints: [], forwarding: new Map(), vxlanMembers: { port, members } },
    observed: undefined,
    clock: stopwatch(),
  });

t.test('VXLAN member filter: written with the other rules, then at once whenever the members change', async (t) => {
  const firewall = new FakeFirewall();
  const step = new FirewallStep({ firewall, dataplane: new FakeDataplane(), log: silentLog, everyMs: 60_000 });
  await step.start(withMembers(['10.0.0.1', '10.0.0.2']));
  t.same(firewall.vxlanMembers.get(4789), ['10.0.0.1', '10.0.0.2']);
  t.equal(firewall.calls, 1);
  t.equal(step.start(withMembers(['10.0.0.1', '10.0.0.2'])), undefined, 'same members, not due: nothing to do');
  const joined = withMembers(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
  await step.start(joined);
  t.same(firewall.vxlanMembers.get(4789), ['10.0.0.1', '10.0.0.2', '10.0.0.3'], 'a node that joins is let in by the next pass');
  t.equal(firewall.calls, 1, 'only the member filter, not every rule');
  t.equal(joined.failed, 0);
  await step.start(withMembers(['10.0.0.1', '10.0.0.3']));
  t.same(firewall.vxlanMembers.get(4789), ['10.0.0.1', '10.0.0.3'], 'a lost node is taken out');
  t.equal(firewall.vxlanWrites, 3);
});

t.test('VXLAN member filter: a failure counts and is retried; an empty list is never written', async (t) => {
  const firewall = new FakeFirewall();
  const step = new FirewallStep({ firewall, dataplane: new FakeDataplane(), log: silentLog, everyMs: 60_000 });
  firewall.failVxlanMembers = new Error('iptables-restore: resource busy');
  const p = withMembers(['10.0.0.1']);
  await step.start(p);
  t.equal(p.failed, 1);
  firewall.failVxlanMembers = undefined;
  const again = withMembers(['10.0.0.1']);
  await step.start(again);
  t.equal(again.failed, 0);
  t.same(firewall.vxlanMembers.get(4789), ['10.0.0.1'], 'retried by the next pass');
  const none = withMembers([]);
  t.equal(step.start(none), undefined);
  await new FirewallStep({ firewall, dataplane: new FakeDataplane(), log: silentLog, everyMs: 0 }).start(none);
  t.same(firewall.vxlanMembers.get(4789), ['10.0.0.1'], 'an empty list leaves the filter as it is');
  t.equal(none.failed, 0);
});

t.test('VXLAN member filter: a VTEP the kernel still forwards to stays let in until its entries are gone', async (t) => {
  const firewall = new FakeFirewall();
  const dataplane = new FakeDataplane();
  const vxlan = vxlanName(4096);
  await dataplane.ensureNetwork({ layout: 'bridge', vni: 4096, bridge: bridgeName(4096), vxlan, port: 4789, local: '10.0.0.1', underlayIndex: 2, mtu: 1450 });
  const entry = { mac: '02:42:0a:00:00:09', dst: '10.0.0.9' };
  await dataplane.addFdb(vxlan, entry);
  const warnings: unknown[] = [];
  const log = { ...silentLog, warn: (o: unknown) => void warnings.push(o) } as typeof silentLog;
  const step = new FirewallStep({ firewall, dataplane, log, everyMs: 0 });
  // a wiped store, adopted: only this node is a member yet, but its kernel still forwards to 10.0.0.9
  const p = withMembers(['10.0.0.1']);
  await step.start(p);
  t.equal(p.failed, 0);
  t.same(firewall.vxlanMembers.get(4789), ['10.0.0.1', '10.0.0.9'], 'the peer it forwards to is still let in');
  t.same(warnings, [{ port: 4789, vteps: ['10.0.0.9'] }], 'said once, with the VTEPs');
  await step.start(withMembers(['10.0.0.1']));
  t.equal(warnings.length, 1, 'not said again while it lasts');
  await step.start(withMembers(['10.0.0.1', '10.0.0.9']));
  t.same(firewall.vxlanMembers.get(4789), ['10.0.0.1', '10.0.0.9'], 'the peer registers again: a member');
  await dataplane.deleteFdb(vxlan, entry);
  await step.start(withMembers(['10.0.0.1']));
  t.same(firewall.vxlanMembers.get(4789), ['10.0.0.1'], 'gone from membership and from the kernel: taken out');
  const v6 = withMembers(['2001:db8::1']);
  await dataplane.addFdb(vxlan, entry);
  await step.start(v6);
  t.same(firewall.vxlanMembers.get(4789), ['2001:db8::1'], 'entries of the other family are not members of an IPv6 filter');
});

t.test('VXLAN member filter: a kernel that cannot be read leaves the filter as it is and counts', async (t) => {
  const firewall = new FakeFirewall();
  const dataplane = new FakeDataplane();
  const step = new FirewallStep({ firewall, dataplane, log: silentLog, everyMs: 0 });
  await step.start(withMembers(['10.0.0.1', '10.0.0.2']));
  dataplane.listAllForwarding = () => Promise.reject(new Error('netlink: dump interrupted'));
  const p = withMembers(['10.0.0.1']);
  await step.start(p);
  t.equal(p.failed, 1);
  t.same(firewall.vxlanMembers.get(4789), ['10.0.0.1', '10.0.0.2'], 'not narrowed on a failed read');
});

const withNetworks = (routes: Array<{ dst: string; dev: string }>, full = false): PassState =>
  newPassState({
    full,
    previous: undefined,
    desired: {
      networks: [],
      endpoints: [],
      forwarding: new Map(),
      resolver: { address: '169.254.53.53', bridges: routes.map((r) => r.dev), routes: routes.map((r) => ({ ...r, src: '169.254.53.53' })) },
    },
    observed: undefined,
    clock: stopwatch(),
  });

t.test('resolver source filter: with the other rules, at once when the networks change, kept networks too; none written for no network', async (t) => {
  const firewall = new FakeFirewall();
  const dataplane = new FakeDataplane();
  const info: string[] = [];
  const log = { ...silentLog, info: (_o: unknown, m: string) => void info.push(m) } as typeof silentLog;
  const step = new FirewallStep({ firewall, dataplane, log, everyMs: 60_000, dnsAddress: '169.254.53.53' });
  const none = withNetworks([]);
  await step.start(none);
  t.equal(firewall.resolverSourceWrites, 0, 'no network: nothing written');
  t.same(info.filter((m) => m.startsWith('resolver source filter')), ['resolver source filter not written: no network here (the chain as it was stays)'], 'said once');
  t.equal(none.failed, 0);
  const a = { dst: '10.61.0.0/24', dev: bridgeName(0x100) };
  await step.start(withNetworks([a]));
  t.same(firewall.resolverSources.get('iptables')?.[0], ['-s', '10.61.0.0/24', '-i', bridgeName(0x100), '-j', 'ACCEPT'], 'a new network: written by the pass that sees it, not due yet');
  t.equal(step.start(withNetworks([a])), undefined, 'unchanged, not due: nothing to do');
  // a network kept here (its reply route still in the table) stays accepted when another one comes
  dataplane.links.set(bridgeName(0x300), { name: bridgeName(0x300), index: 30, kind: 'bridge', mtu: 1450, up: true, mac: '02:00:00:00:03:00' });
  await dataplane.ensureBridgeAddress(bridgeName(0x300), '169.254.53.53');
  await dataplane.ensureTableRoute(RESOLVER_TABLE, { dst: '10.63.0.0/24', dev: bridgeName(0x300), src: '169.254.53.53' });
  const b = { dst: '10.62.0.0/24', dev: bridgeName(0x200) };
  await step.start(withNetworks([a, b]));
  t.same(firewall.resolverSources.get('iptables')?.map((r) => r[1]).slice(0, 3), ['10.61.0.0/24', '10.62.0.0/24', '10.63.0.0/24']);
  firewall.failResolverSources = new Error('iptables-restore: resource busy');
  const failing = withNetworks([b]);
  await step.start(failing);
  t.equal(failing.failed, 1, 'a failure counts');
  firewall.failResolverSources = undefined;
  const retry = step.start(withNetworks([b]));
  t.ok(retry, 'and is retried by the next pass');
  await retry;
  t.equal(firewall.resolverSourceWrites, 3);
  await step.start(withNetworks([]));
  t.equal(firewall.resolverSourceWrites, 4, 'no network desired, one kept here: not refused as empty');
  t.same(firewall.resolverSources.get('iptables')?.map((r) => r[1]).slice(0, 1), ['10.63.0.0/24'], 'written from the kept network\'s reply route');
});
