/**
 * Dataplane contract, resolver routing: bridge addresses, the source rule,
 * the routes of its table (fake and real adapter: harness.ts).
 */
import type { Test } from 'tap';
import type { BridgeNetworkDevices, TableRoute } from '../../../src/dataplane/dataplane.js';
import { bridgeName } from '../../../src/dataplane/names.js';
import { byName, type ContractEnv, epSpec, netSpec, PRIORITY, R, R6, runDataplaneContract, TABLE, UNDERLAY } from './harness.js';

const routingContract = (t: Test, env: ContractEnv): void => {
  const { dp } = env;

  const network = async (vni: number): Promise<BridgeNetworkDevices> => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const spec = netSpec(vni, 4789, ul, env);
    await dp.ensureNetwork(spec);
    return spec;
  };

  t.test('bridge addresses: idempotent, visible, the same address on several bridges', async (t) => {
    const a = await network(0x800);
    const b = await network(0x801);
    t.equal((await byName(dp)).get(a.bridge)?.addresses, undefined, 'a new bridge has none (the IPv6 link-local is not listed)');
    await dp.ensureBridgeAddress(a.bridge, R);
    await dp.ensureBridgeAddress(b.bridge, R);
    await dp.ensureBridgeAddress(a.bridge, 'FD53:0::53');
    const links = await byName(dp);
    t.same(links.get(a.bridge)?.addresses, [R, R6], 'IPv4 before IPv6, canonical');
    t.same(links.get(b.bridge)?.addresses, [R]);
    t.equal(links.get(a.vxlan)?.addresses, undefined, 'nothing on the VXLAN device');
    const before = await dp.listOwnedLinks();
    await dp.ensureBridgeAddress(a.bridge, R);
    await dp.ensureBridgeAddress(b.bridge, R);
    await dp.ensureBridgeAddress(a.bridge, R6);
    t.same(await dp.listOwnedLinks(), before, 'replays change nothing');

    const missing = bridgeName(0x802);
    await t.rejects(dp.ensureBridgeAddress(missing, R), { code: 'KERNEL_FAILURE', message: `ensure bridge address ${missing}: no such bridge` });
    await t.rejects(dp.ensureBridgeAddress(a.vxlan, R), {
      code: 'KERNEL_FAILURE',
      message: `ensure bridge address ${a.vxlan}: not a bridge (kind vxlan)`,
    });
    for (const [what, bridge, address] of [
      ['foreign device', 'eth0', R],
      ['with a prefix', a.bridge, `${R}/32`],
      ['multicast', a.bridge, '224.0.0.251'],
      ['unspecified', a.bridge, '0.0.0.0'],
      ['not an IP', a.bridge, 'resolver'],
    ] as const) {
      await t.rejects(dp.ensureBridgeAddress(bridge, address), { code: 'INVALID_OPTION' }, what);
    }
    t.same(await dp.listOwnedLinks(), before, 'refused calls change nothing');
  });

  t.test('source rule: idempotent; another table at the same priority is replaced', async (t) => {
    t.teardown(() => env.flushRules());
    t.same(await env.rules(), [], 'none to start with');
    await dp.ensureSourceRule(R, TABLE, PRIORITY);
    await dp.ensureSourceRule(R, TABLE, PRIORITY);
    t.same(await env.rules(), [`5353 from ${R} lookup 5353`], 'one rule, however often ensured');
    await dp.ensureSourceRule('FD53::53', TABLE, PRIORITY);
    await dp.ensureSourceRule(R6, TABLE, PRIORITY);
    t.same(await env.rules(), [`5353 from ${R} lookup 5353`, `5353 from ${R6} lookup 5353`], 'IPv6, any spelling');
    await dp.ensureSourceRule(R, 100, PRIORITY);
    t.same(await env.rules(), [`5353 from ${R} lookup 100`, `5353 from ${R6} lookup 5353`], 'another table: replaced');
    await dp.ensureSourceRule(R, 100, 1000);
    t.same(
      await env.rules(),
      [`1000 from ${R} lookup 100`, `5353 from ${R} lookup 100`, `5353 from ${R6} lookup 5353`],
      'rules at other priorities are left alone',
    );
    const bad: [string, () => Promise<unknown>][] = [
      ['main table', () => dp.ensureSourceRule(R, 254, PRIORITY)],
      ['local table', () => dp.ensureSourceRule(R, 255, PRIORITY)],
      ['table 0', () => dp.ensureSourceRule(R, 0, PRIORITY)],
      ['table not an integer', () => dp.ensureSourceRule(R, 1.5, PRIORITY)],
      ['table above u32', () => dp.ensureSourceRule(R, 2 ** 32, PRIORITY)],
      ['priority 0', () => dp.ensureSourceRule(R, TABLE, 0)],
      ['priority of the main rule', () => dp.ensureSourceRule(R, TABLE, 32766)],
      ['source not an IP', () => dp.ensureSourceRule('resolver', TABLE, PRIORITY)],
      ['source a network', () => dp.ensureSourceRule('169.254.0.0/16', TABLE, PRIORITY)],
    ];
    for (const [what, call] of bad) await t.rejects(call(), { code: 'INVALID_OPTION' }, what);
    t.equal((await env.rules()).length, 3, 'refused calls add nothing');
  });

  t.test('table routes: add, list, replace, delete (IPv4 and IPv6)', async (t) => {
    const a = await network(0x810);
    const b = await network(0x811);
    await dp.ensureBridgeAddress(a.bridge, R);
    await dp.ensureBridgeAddress(a.bridge, R6);
    t.same(await dp.listTableRoutes(TABLE), [], 'none to start with');
    const all: TableRoute[] = [
      { dst: '10.77.0.0/24', dev: a.bridge, src: R },
      { dst: '10.78.0.0/16', dev: b.bridge, src: R }, // src may live on another device
      { dst: '10.79.0.0/24', dev: b.bridge },
      { dst: 'FD77:1:0::/64', dev: a.bridge, src: 'FD53::53' },
    ];
    for (const r of all) await dp.ensureTableRoute(TABLE, r);
    const want: TableRoute[] = [
      { dst: '10.77.0.0/24', dev: a.bridge, src: R },
      { dst: '10.78.0.0/16', dev: b.bridge, src: R },
      { dst: '10.79.0.0/24', dev: b.bridge },
      { dst: 'fd77:1::/64', dev: a.bridge, src: R6 },
    ];
    t.same(await dp.listTableRoutes(TABLE), want, 'listed canonical, sorted');
    for (const r of all) await dp.ensureTableRoute(TABLE, r);
    t.same(await dp.listTableRoutes(TABLE), want, 'replays change nothing');
    t.same(await dp.listTableRoutes(TABLE + 1), [], 'another table is empty');

    await dp.ensureTableRoute(TABLE, { dst: '10.77.0.0/24', dev: b.bridge, src: R });
    await dp.ensureTableRoute(TABLE, { dst: '10.79.0.0/24', dev: b.bridge, src: R });
    t.same(
      await dp.listTableRoutes(TABLE),
      [
        { dst: '10.77.0.0/24', dev: b.bridge, src: R },
        { dst: '10.78.0.0/16', dev: b.bridge, src: R },
        { dst: '10.79.0.0/24', dev: b.bridge, src: R },
        { dst: 'fd77:1::/64', dev: a.bridge, src: R6 },
      ],
      'one route per dst: a new dev or src replaces it',
    );

    t.equal(await dp.deleteTableRoute(TABLE, { dst: '10.77.0.0/24', dev: a.bridge }), false, 'not through that device');
    t.equal(await dp.deleteTableRoute(TABLE, { dst: '10.77.0.0/24', dev: b.bridge }), true);
    t.equal(await dp.deleteTableRoute(TABLE, { dst: '10.77.0.0/24', dev: b.bridge }), false, 'delete again');
    t.equal(await dp.deleteTableRoute(TABLE, { dst: 'fd77:1:0:0::/64', dev: a.bridge }), true, 'IPv6, any spelling');
    t.equal(await dp.deleteTableRoute(TABLE + 1, { dst: '10.78.0.0/16', dev: b.bridge }), false, 'another table');
    t.equal(await dp.deleteTableRoute(TABLE, { dst: '10.78.0.0/16', dev: bridgeName(0x812) }), false, 'no such device');
    t.same(await dp.listTableRoutes(TABLE), [
      { dst: '10.78.0.0/16', dev: b.bridge, src: R },
      { dst: '10.79.0.0/24', dev: b.bridge, src: R },
    ]);

    const missing = bridgeName(0x812);
    await t.rejects(dp.ensureTableRoute(TABLE, { dst: '10.77.0.0/24', dev: missing, src: R }), {
      code: 'KERNEL_FAILURE',
      message: `ensure table route ${missing}: no such device`,
    });
    await t.rejects(dp.ensureTableRoute(TABLE, { dst: '10.77.0.0/24', dev: a.bridge, src: '169.254.53.54' }), {
      code: 'KERNEL_FAILURE',
      message: `ensure table route ${a.bridge}: EINVAL (10.77.0.0/24 table ${TABLE} src 169.254.53.54)`,
    });
    const ep = epSpec('0123456789ab', a, '02:42:0a:4d:00:05');
    await dp.ensureEndpoint(ep);
    await t.rejects(dp.ensureTableRoute(TABLE, { dst: '10.77.0.0/24', dev: ep.containerIf }), {
      code: 'KERNEL_FAILURE',
      message: `ensure table route ${ep.containerIf}: ENETDOWN (10.77.0.0/24 table ${TABLE})`,
    });
    const bad: [string, () => Promise<unknown>][] = [
      ['host bits set', () => dp.ensureTableRoute(TABLE, { dst: '10.77.0.5/24', dev: a.bridge })],
      ['no prefix length', () => dp.ensureTableRoute(TABLE, { dst: '10.77.0.0', dev: a.bridge })],
      ['src of the other family', () => dp.ensureTableRoute(TABLE, { dst: '10.77.0.0/24', dev: a.bridge, src: R6 })],
      ['foreign device', () => dp.ensureTableRoute(TABLE, { dst: '10.77.0.0/24', dev: 'eth0' })],
      ['main table', () => dp.ensureTableRoute(254, { dst: '10.77.0.0/24', dev: a.bridge })],
      ['list the main table', () => dp.listTableRoutes(254)],
      ['delete from the local table', () => dp.deleteTableRoute(255, { dst: '10.77.0.0/24', dev: a.bridge })],
    ];
    for (const [what, call] of bad) await t.rejects(call(), { code: 'INVALID_OPTION' }, what);
    t.equal((await dp.listTableRoutes(TABLE)).length, 2, 'refused calls change nothing');
  });

  t.test('deleting a bridge removes its routes and its addresses', async (t) => {
    const a = await network(0x820);
    const b = await network(0x821);
    for (const n of [a, b]) await dp.ensureBridgeAddress(n.bridge, R);
    await dp.ensureTableRoute(TABLE, { dst: '10.77.0.0/24', dev: a.bridge, src: R });
    await dp.ensureTableRoute(TABLE, { dst: '10.78.0.0/24', dev: b.bridge, src: R });
    t.equal(await dp.deleteLink(a.bridge), true);
    t.same(await dp.listTableRoutes(TABLE), [{ dst: '10.78.0.0/24', dev: b.bridge, src: R }], "the other bridge's route stays");
    await dp.ensureNetwork(a);
    const links = await byName(dp);
    t.equal(links.get(a.bridge)?.addresses, undefined, 'a recreated bridge starts without the address');
    t.same(links.get(b.bridge)?.addresses, [R]);
    t.same(await dp.listTableRoutes(TABLE), [{ dst: '10.78.0.0/24', dev: b.bridge, src: R }], 'nor does its route come back');
    t.equal(await dp.deleteTableRoute(TABLE, { dst: '10.77.0.0/24', dev: a.bridge }), false);
  });
};

runDataplaneContract(import.meta.url, routingContract);
