/** The firewall step of a reconcile pass, on a fake firewall and kernel. */
import t from 'tap';
import { FakeDataplane } from '../dataplane/fake-dataplane.js';
import { FakeFirewall } from '../dataplane/fake-firewall.js';
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
