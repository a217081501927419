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
