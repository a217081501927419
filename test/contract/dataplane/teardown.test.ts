/**
 * Dataplane contract, teardown (`tsoverlay cleanup`): the resolver's policy
 * rules and loopback addresses are read back and removed exactly, nothing
 * else (fake and real adapter: harness.ts).
 */
import type { Test } from 'tap';
import { FakeFirewall } from '../../../src/dataplane/fake-firewall.js';
import { formatRule, type Firewall } from '../../../src/dataplane/firewall.js';
import { IptablesFirewall } from '../../../src/dataplane/iptables-firewall.js';
import { type ContractEnv, PEER1, PRIORITY, R, R6, runDataplaneContract, TABLE, V4 } from './harness.js';

const teardownContract = (t: Test, env: ContractEnv): void => {
  const { dp } = env;

  t.test('source rules: listed per table, deleted exactly once', async (t) => {
    t.teardown(() => env.flushRules());
    t.same(await dp.listSourceRules(TABLE), [], 'none to start with');
    await dp.ensureSourceRule(R6, TABLE, PRIORITY);
    await dp.ensureSourceRule(R, TABLE, PRIORITY);
    await dp.ensureSourceRule(R, TABLE, 1000);
    await dp.ensureSourceRule('169.254.53.54', 100, PRIORITY);
    t.same(
      await dp.listSourceRules(TABLE),
      [
        { source: R, table: TABLE, priority: 1000 },
        { source: R, table: TABLE, priority: PRIORITY },
        { source: R6, table: TABLE, priority: PRIORITY },
      ],
      'by priority, IPv4 before IPv6; another table left out',
    );
    t.same(await dp.listSourceRules(100), [{ source: '169.254.53.54', table: 100, priority: PRIORITY }]);

    t.equal(await dp.deleteSourceRule({ source: R, table: TABLE, priority: PRIORITY }), true);
    t.equal(await dp.deleteSourceRule({ source: R, table: TABLE, priority: PRIORITY }), false, 'again: gone');
    t.equal(await dp.deleteSourceRule({ source: R, table: 100, priority: 1000 }), false, 'not with another table');
    t.equal(await dp.deleteSourceRule({ source: 'FD53:0::53', table: TABLE, priority: PRIORITY }), true, 'IPv6, any spelling');
    t.same(await env.rules(), [`1000 from ${R} lookup 5353`, `5353 from 169.254.53.54 lookup 100`], 'the others stay');

    for (const [what, rule] of [
      ['main table', { source: R, table: 254, priority: 1000 }],
      ['priority of the main rule', { source: R, table: TABLE, priority: 32766 }],
      ['source not an IP', { source: 'resolver', table: TABLE, priority: 1000 }],
    ] as const) {
      await t.rejects(dp.deleteSourceRule(rule), { code: 'INVALID_OPTION' }, what);
    }
    t.equal((await env.rules()).length, 2, 'refused calls delete nothing');
  });

  t.test('loopback addresses: listed, deleted exactly once', async (t) => {
    t.teardown(async () => {
      for (const a of [R, R6]) await dp.deleteLocalAddress(a);
    });
    const before = await dp.listLocalAddresses();
    t.notOk(before.includes(R), 'not there to start with');
    t.notOk(before.includes('127.0.0.1'), "lo's own 127.0.0.1/8 is not a full-length address");
    await dp.ensureLocalAddress(R);
    await dp.ensureLocalAddress(R6);
    const listed = await dp.listLocalAddresses();
    t.ok(listed.includes(R) && listed.includes(R6), `listed: ${listed.join(' ')}`);
    t.ok(listed.indexOf(R) < listed.indexOf(R6), 'IPv4 before IPv6');
    t.equal(await dp.deleteLocalAddress(R), true);
    t.equal(await dp.deleteLocalAddress(R), false, 'again: gone');
    t.equal(await dp.deleteLocalAddress('fd53:0::53'), true, 'IPv6, any spelling');
    t.same(await dp.listLocalAddresses(), before, 'back to what it was');
    await t.rejects(dp.deleteLocalAddress('169.254.53.53/32'), { code: 'INVALID_OPTION' }, 'with a prefix');
  });

  // The firewall's counterpart, on the same terms: IptablesFirewall with the
  // real iptables in the namespace, FakeFirewall beside the fake kernel.
  t.test('firewall rules: every rule of ours listed, each deleted exactly once', async (t) => {
    const fw: Firewall = env.kernel ? new IptablesFirewall() : new FakeFirewall();
    t.same(await fw.listOwnedRules(), [], 'none to start with');
    await fw.ensureBridgeForwarding();
    await fw.ensureResolverInput(R);
    await fw.ensureResolverInput(R6);
    await fw.ensureVxlanMembers(4789, [V4, PEER1]);
    await fw.ensureResolverSources(R, [{ subnet: '10.61.0.0/24', device: 'tsbr-000100' }]);
    await fw.ensureResolverSources(R6, [{ subnet: 'fd61::/64', device: 'tsbr-000100' }]);
    t.same(
      (await fw.listOwnedChains()).map((c) => `${c.command} ${c.table} ${c.chain}`).sort(),
      ['ip6tables filter TSOVERLAY-DNS', 'iptables filter TSOVERLAY-DNS', 'iptables raw TSOVERLAY-VXLAN'],
      'the VXLAN member chain and the resolver source filter of each family',
    );
    const rules = await fw.listOwnedRules();
    const shown = rules.map(formatRule).sort();
    const tag = (c: string) => `-m comment --comment "${c}"`;
    t.same(
      shown,
      [
        `ip6tables -t filter -A FORWARD -i tsbr+ -o tsbr+ ${tag('tsoverlay bridges')} -j ACCEPT`,
        `ip6tables -t filter -A INPUT -d ${R6}/128 ${tag('tsoverlay resolver')} -j DROP`,
        `ip6tables -t filter -A INPUT -d ${R6}/128 -i lo ${tag('tsoverlay resolver')} -j ACCEPT`,
        `ip6tables -t filter -A INPUT -d ${R6}/128 -i tsbr+ ${tag('tsoverlay resolver')} -j TSOVERLAY-DNS`,
        `ip6tables -t raw -A PREROUTING -i tsbr+ ${tag('tsoverlay bridges: no conntrack')} -j CT --notrack`,
        `iptables -t filter -A FORWARD -i tsbr+ -o tsbr+ ${tag('tsoverlay bridges')} -j ACCEPT`,
        `iptables -t filter -A INPUT -d ${R}/32 ${tag('tsoverlay resolver')} -j DROP`,
        `iptables -t filter -A INPUT -d ${R}/32 -i lo ${tag('tsoverlay resolver')} -j ACCEPT`,
        `iptables -t filter -A INPUT -d ${R}/32 -i tsbr+ ${tag('tsoverlay resolver')} -j TSOVERLAY-DNS`,
        `iptables -t raw -A PREROUTING -i tsbr+ ${tag('tsoverlay bridges: no conntrack')} -j CT --notrack`,
        'iptables -t raw -A PREROUTING -p udp -m udp --dport 4789 -j TSOVERLAY-VXLAN',
      ].sort(),
      'the bridge rules of both families, the resolver rules of each address, the jumps into the chains of ours (not the rules inside them)',
    );
    const [chain] = await fw.listOwnedChains();
    if (!chain) throw new Error('no chain');
    await t.rejects(fw.deleteChain(chain), 'a chain still jumped to is not deleted');
    for (const r of rules) t.equal(await fw.deleteRule(r), true, `deleted: ${formatRule(r)}`);
    t.same(await fw.listOwnedRules(), [], 'none left');
    t.equal(await fw.deleteRule(rules[0] ?? rules[1]!), false, 'deleting again: false');
    for (const c of await fw.listOwnedChains()) t.equal(await fw.deleteChain(c), true, `the chain ${c.command} ${c.chain}, once nothing jumps to it`);
    t.same(await fw.listOwnedChains(), [], 'no chain left');
    t.equal(await fw.deleteChain(chain), false, 'again: false');
  });
};

runDataplaneContract(import.meta.url, teardownContract);
