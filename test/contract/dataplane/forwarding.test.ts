/**
 * Dataplane contract, forwarding: FDB and neighbour entries on a VXLAN
 * device (add, list, replace, delete, in bulk), the all-zero MAC, the
 * multicast group (fake and real adapter: harness.ts).
 */
import type { Test } from 'tap';
import type { BridgeNetworkDevices, FdbEntry, Forwarding, NeighEntry } from '../../../src/dataplane/dataplane.js';
import { vxlanName } from '../../../src/dataplane/names.js';
import { sortForwarding } from '../../../src/dataplane/spec.js';
import {
  BULK,
  byName,
  type ContractEnv,
  EMPTY,
  MAC_A,
  MAC_B,
  MAC_C,
  netSpec,
  nthIp,
  nthMac,
  nthPeer,
  PEER1,
  PEER2,
  PEER3,
  runDataplaneContract,
  UNDERLAY,
  V4,
  V6,
  ZERO,
} from './harness.js';

const forwardingContract = (t: Test, env: ContractEnv): void => {
  const { dp } = env;

  const network = async (vni: number, extra: Partial<BridgeNetworkDevices> = {}): Promise<BridgeNetworkDevices> => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const spec = { ...netSpec(vni, 4789, ul, env), ...extra };
    await dp.ensureNetwork(spec);
    return spec;
  };

  t.test('FDB and neighbour entries: add, list, re-add, replace, delete (IPv4 and IPv6)', async (t) => {
    const net = await network(0x700);
    t.same(await dp.listForwarding(net.vxlan), EMPTY, 'a new device has none of ours');

    await dp.addFdb(net.vxlan, { mac: MAC_A, dst: PEER1 });
    await dp.addFdb(net.vxlan, { mac: MAC_B, dst: PEER2 });
    await dp.addNeigh(net.vxlan, { ip: '10.20.0.5', mac: MAC_A });
    await dp.addNeigh(net.vxlan, { ip: 'fd20::5', mac: MAC_A });
    await dp.addNeigh(net.vxlan, { ip: '10.20.0.6', mac: MAC_B });
    const want: Forwarding = {
      fdb: [
        { mac: MAC_A, dst: PEER1 },
        { mac: MAC_B, dst: PEER2 },
      ],
      neigh: [
        { ip: '10.20.0.5', mac: MAC_A },
        { ip: '10.20.0.6', mac: MAC_B },
        { ip: 'fd20::5', mac: MAC_A },
      ],
    };
    t.same(await dp.listForwarding(net.vxlan), want, 'listed, sorted (IPv4 before IPv6)');

    await dp.addFdb(net.vxlan, { mac: MAC_A.toUpperCase(), dst: PEER1 });
    await dp.addNeigh(net.vxlan, { ip: 'FD20:0:0::0005', mac: MAC_A.toUpperCase() });
    await dp.addNeigh(net.vxlan, { ip: '10.20.0.6', mac: MAC_B });
    t.same(await dp.listForwarding(net.vxlan), want, 're-adding (any spelling) changes nothing');

    await dp.addFdb(net.vxlan, { mac: MAC_A, dst: PEER3 });
    await dp.addNeigh(net.vxlan, { ip: '10.20.0.5', mac: MAC_C });
    t.same(
      await dp.listForwarding(net.vxlan),
      {
        fdb: [
          { mac: MAC_A, dst: PEER3 },
          { mac: MAC_B, dst: PEER2 },
        ],
        neigh: [
          { ip: '10.20.0.5', mac: MAC_C },
          { ip: '10.20.0.6', mac: MAC_B },
          { ip: 'fd20::5', mac: MAC_A },
        ],
      },
      'a unicast MAC has one dst and an IP one MAC: adding replaces',
    );

    t.equal(await dp.deleteFdb(net.vxlan, { mac: MAC_A, dst: PEER1 }), false, 'delete with a dst the MAC no longer has');
    t.equal(await dp.deleteFdb(net.vxlan, { mac: MAC_C, dst: PEER1 }), false, 'delete an unknown MAC');
    t.equal(await dp.deleteFdb(net.vxlan, { mac: MAC_A, dst: PEER3 }), true, 'delete');
    t.equal(await dp.deleteFdb(net.vxlan, { mac: MAC_A, dst: PEER3 }), false, 'delete again');
    t.equal(await dp.deleteNeigh(net.vxlan, { ip: '10.20.0.5', mac: MAC_A }), false, 'the IP maps to another MAC now: kept');
    t.equal(await dp.deleteNeigh(net.vxlan, { ip: '10.20.0.5', mac: MAC_C }), true);
    t.equal(await dp.deleteNeigh(net.vxlan, { ip: '10.20.0.5', mac: MAC_C }), false, 'delete again');
    t.equal(await dp.deleteNeigh(net.vxlan, { ip: 'fd20:0::5', mac: MAC_A }), true, 'IPv6, any spelling');
    t.equal(await dp.deleteNeigh(net.vxlan, { ip: '10.20.0.99', mac: MAC_A }), false, 'never existed');
    t.same(await dp.listForwarding(net.vxlan), {
      fdb: [{ mac: MAC_B, dst: PEER2 }],
      neigh: [{ ip: '10.20.0.6', mac: MAC_B }],
    });
    t.same(await dp.listOwnedLinks().then((l) => l.map((x) => x.name).sort()), [net.bridge, net.vxlan], 'no device touched');
  });

  t.test('all-zero MAC: one entry per remote node, deleting one keeps the others', async (t) => {
    const net = await network(0x710);
    await dp.addFdb(net.vxlan, { mac: ZERO, dst: PEER1 });
    await dp.addFdb(net.vxlan, { mac: ZERO, dst: PEER2 });
    await dp.addFdb(net.vxlan, { mac: ZERO, dst: PEER1 }); // replay
    await dp.addFdb(net.vxlan, { mac: MAC_A, dst: PEER1 }); // a unicast entry to the same node
    t.same((await dp.listForwarding(net.vxlan)).fdb, [
      { mac: ZERO, dst: PEER1 },
      { mac: ZERO, dst: PEER2 },
      { mac: MAC_A, dst: PEER1 },
    ]);
    t.equal(await dp.deleteFdb(net.vxlan, { mac: ZERO, dst: PEER3 }), false, 'a dst it does not have');
    t.equal(await dp.deleteFdb(net.vxlan, { mac: ZERO, dst: PEER1 }), true);
    t.same((await dp.listForwarding(net.vxlan)).fdb, [
      { mac: ZERO, dst: PEER2 },
      { mac: MAC_A, dst: PEER1 },
    ]);
    t.equal(await dp.deleteFdb(net.vxlan, { mac: ZERO, dst: PEER1 }), false, 'delete again');
    await dp.addFdb(net.vxlan, { mac: ZERO, dst: PEER1 });
    t.equal((await dp.listForwarding(net.vxlan)).fdb.length, 3, 'added back');
    t.equal(await dp.deleteFdb(net.vxlan, { mac: ZERO, dst: PEER2 }), true);
    t.equal(await dp.deleteFdb(net.vxlan, { mac: ZERO, dst: PEER1 }), true, 'the last one');
    t.same((await dp.listForwarding(net.vxlan)).fdb, [{ mac: MAC_A, dst: PEER1 }]);
  });

  t.test('an IPv6 underlay takes IPv6 dsts only', async (t) => {
    const net = await network(0x720, { local: V6, mtu: env.underlayMtu - 70 });
    await dp.addFdb(net.vxlan, { mac: ZERO, dst: 'fd77::10' });
    await dp.addFdb(net.vxlan, { mac: MAC_A, dst: 'FD77:0::11' });
    t.same((await dp.listForwarding(net.vxlan)).fdb, [
      { mac: ZERO, dst: 'fd77::10' },
      { mac: MAC_A, dst: 'fd77::11' },
    ]);
    await t.rejects(dp.addFdb(net.vxlan, { mac: MAC_B, dst: PEER1 }), {
      code: 'INVALID_OPTION',
      message: `FDB entry on ${net.vxlan}: dst ${PEER1} is IPv4 but the device's local address is IPv6`,
    });
    t.equal(await dp.deleteFdb(net.vxlan, { mac: MAC_A, dst: PEER1 }), false, 'an entry of the other family cannot exist');
    t.equal(await dp.deleteFdb(net.vxlan, { mac: MAC_A, dst: 'fd77::11' }), true);
  });

  t.test('entries live and die with their VXLAN device', async (t) => {
    const net = await network(0x730);
    const entries = async (): Promise<void> => {
      await dp.addFdb(net.vxlan, { mac: MAC_A, dst: PEER1 });
      await dp.addFdb(net.vxlan, { mac: ZERO, dst: PEER1 });
      await dp.addNeigh(net.vxlan, { ip: '10.20.0.5', mac: MAC_A });
      await dp.addNeigh(net.vxlan, { ip: 'fd20::5', mac: MAC_A });
    };
    await entries();
    const full = await dp.listForwarding(net.vxlan);
    t.equal(full.fdb.length + full.neigh.length, 4);
    await dp.ensureNetwork(net);
    await dp.ensureNetwork({ ...net, mtu: net.mtu - 10 });
    t.same(await dp.listForwarding(net.vxlan), full, 'kept by a compatible ensure (MTU converged in place)');
    await dp.ensureNetwork({ ...net, port: 4790 });
    t.same(await dp.listForwarding(net.vxlan), EMPTY, 'gone when the device is recreated');
    await entries();
    t.equal(await dp.deleteLink(net.vxlan), true);
    await dp.ensureNetwork(net);
    t.same(await dp.listForwarding(net.vxlan), EMPTY, 'gone with a deleted device');
  });

  t.test('forwarding calls need one of our VXLAN devices and valid entries', async (t) => {
    const net = await network(0x740);
    const missing = vxlanName(0x741);
    const fdb: FdbEntry = { mac: MAC_A, dst: PEER1 };
    const neigh: NeighEntry = { ip: '10.20.0.5', mac: MAC_A };
    const gone = (op: string, name = missing) => ({ code: 'KERNEL_FAILURE', message: `${op} ${name}: no such vxlan device` });
    await t.rejects(dp.listForwarding(missing), gone('list forwarding'));
    await t.rejects(dp.addFdb(missing, fdb), gone('add fdb'));
    await t.rejects(dp.deleteFdb(missing, fdb), gone('delete fdb'));
    await t.rejects(dp.addNeigh(missing, neigh), gone('add neighbour'));
    await t.rejects(dp.deleteNeigh(missing, neigh), gone('delete neighbour'));
    const notVxlan = (op: string) => ({ code: 'KERNEL_FAILURE', message: `${op} ${net.bridge}: not a vxlan device (kind bridge)` });
    await t.rejects(dp.listForwarding(net.bridge), notVxlan('list forwarding'));
    await t.rejects(dp.addFdb(net.bridge, fdb), notVxlan('add fdb'));
    await t.rejects(dp.addNeigh(net.bridge, neigh), notVxlan('add neighbour'));

    const bad: [string, () => Promise<unknown>][] = [
      ['foreign device', () => dp.listForwarding('eth0')],
      ['foreign device (add)', () => dp.addFdb('eth0', fdb)],
      ['multicast MAC', () => dp.addFdb(net.vxlan, { mac: '01:00:5e:00:00:01', dst: PEER1 })],
      ['MAC not a MAC', () => dp.addFdb(net.vxlan, { mac: '02:42', dst: PEER1 })],
      ['dst not an IP', () => dp.addFdb(net.vxlan, { mac: MAC_A, dst: 'peer1' })],
      ['dst multicast', () => dp.addFdb(net.vxlan, { mac: ZERO, dst: '239.1.1.1' })],
      ['dst unspecified', () => dp.addFdb(net.vxlan, { mac: MAC_A, dst: '0.0.0.0' })],
      ['dst with prefix', () => dp.deleteFdb(net.vxlan, { mac: MAC_A, dst: `${PEER1}/24` })],
      ['neighbour all-zero MAC', () => dp.addNeigh(net.vxlan, { ip: '10.20.0.5', mac: ZERO })],
      ['neighbour multicast IP', () => dp.addNeigh(net.vxlan, { ip: 'ff02::1', mac: MAC_A })],
      ['neighbour IP not an IP', () => dp.deleteNeigh(net.vxlan, { ip: '10.20.0', mac: MAC_A })],
      ['invalid entry on a missing device', () => dp.addFdb(missing, { mac: MAC_A, dst: 'x' })],
    ];
    for (const [what, call] of bad) await t.rejects(call(), { code: 'INVALID_OPTION' }, what);
    await t.rejects(dp.addFdb(net.vxlan, { mac: '01:00:5e:00:00:01', dst: PEER1 }), {
      message: `FDB entry on ${net.vxlan}: MAC "01:00:5e:00:00:01" is neither unicast nor all zeros`,
    });
    t.same(await dp.listForwarding(net.vxlan), EMPTY, 'nothing written');
  });

  t.test('the multicast group round-trips and is part of compatibility', async (t) => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const net = await network(0x750, { group: '239.1.1.42' });
    let links = await byName(dp);
    t.same(links.get(net.vxlan)?.vxlan, {
      vni: net.vni,
      port: 4789,
      local: V4,
      link: ul.ifindex,
      group: '239.1.1.42',
      learning: false,
      proxy: true,
    });
    const before = await dp.listOwnedLinks();
    await dp.ensureNetwork(net);
    t.same(await dp.listOwnedLinks(), before, 'idempotent');
    t.same(await dp.listForwarding(net.vxlan), EMPTY, "the group's own all-zero entry is not listed");
    await dp.addFdb(net.vxlan, { mac: ZERO, dst: PEER1 });
    t.same((await dp.listForwarding(net.vxlan)).fdb, [{ mac: ZERO, dst: PEER1 }], 'head-end entries coexist with the group');
    await t.rejects(
      dp.deleteFdb(net.vxlan, { mac: ZERO, dst: '239.1.1.42' }),
      { code: 'INVALID_OPTION' },
      'the group entry is not ours to delete (a multicast dst is refused)',
    );
    t.equal(await dp.deleteFdb(net.vxlan, { mac: ZERO, dst: PEER1 }), true);
    t.same(await dp.listOwnedLinks(), before, 'the device keeps its group');

    await dp.ensureNetwork({ ...net, group: '239.1.1.43' });
    links = await byName(dp);
    t.not(links.get(net.vxlan)?.index, before.find((l) => l.name === net.vxlan)?.index, 'another group: recreated');
    t.equal(links.get(net.vxlan)?.vxlan?.group, '239.1.1.43');
    const { group: _, ...noGroup } = net;
    await dp.ensureNetwork(noGroup);
    links = await byName(dp);
    t.equal(links.get(net.vxlan)?.vxlan?.group, undefined, 'group removed');
    t.notOk('group' in (links.get(net.vxlan)?.vxlan ?? {}), 'no group key at all');

    await dp.ensureNetwork({ ...net, local: 'FD77::2', group: 'FF05:0::42', mtu: env.underlayMtu - 70 });
    t.match((await byName(dp)).get(net.vxlan)?.vxlan, { local: V6, group: 'ff05::42' }, 'IPv6 group, canonical');

    for (const [what, group] of [
      ['unicast group', '10.1.1.1'],
      ['not an IP', 'group'],
      ['family other than local', 'ff05::1'],
    ] as const) {
      await t.rejects(dp.ensureNetwork({ ...net, group }), { code: 'INVALID_OPTION' }, what);
    }
  });

  t.test('concurrent forwarding calls', async (t) => {
    const net = await network(0x760);
    const n = 64;
    await Promise.all([
      ...Array.from({ length: n }, (_, i) => dp.addFdb(net.vxlan, { mac: nthMac(i), dst: nthPeer(i) })),
      ...Array.from({ length: n }, (_, i) => dp.addNeigh(net.vxlan, { ip: nthIp(i), mac: nthMac(i) })),
      ...Array.from({ length: 4 }, (_, i) => dp.addFdb(net.vxlan, { mac: ZERO, dst: nthPeer(i) })),
      dp.listForwarding(net.vxlan),
      dp.listOwnedLinks(),
    ]);
    const f = await dp.listForwarding(net.vxlan);
    t.equal(f.fdb.length, n + 4);
    t.equal(f.neigh.length, n);
    const deleted = await Promise.all([
      ...Array.from({ length: n }, (_, i) => dp.deleteFdb(net.vxlan, { mac: nthMac(i), dst: nthPeer(i) })),
      ...Array.from({ length: n }, (_, i) => dp.deleteNeigh(net.vxlan, { ip: nthIp(i), mac: nthMac(i) })),
      ...Array.from({ length: 4 }, (_, i) => dp.deleteFdb(net.vxlan, { mac: ZERO, dst: nthPeer(i) })),
    ]);
    t.ok(deleted.every(Boolean), 'every delete found its entry');
    t.same(await dp.listForwarding(net.vxlan), EMPTY);
  });

  t.test('listAllForwarding: every VXLAN device by ifindex, as listForwarding lists it', async (t) => {
    const a = await network(0x790);
    const b = await network(0x791);
    const empty = await network(0x792);
    await Promise.all(Array.from({ length: 8 }, (_, i) => dp.addFdb(a.vxlan, { mac: nthMac(i), dst: nthPeer(i) })));
    await dp.addFdb(a.vxlan, { mac: ZERO, dst: PEER1 });
    await dp.addNeigh(b.vxlan, { ip: nthIp(1), mac: nthMac(1) });
    await dp.addFdb(b.vxlan, { mac: nthMac(1), dst: PEER2 });
    const index = await byName(dp);
    const all = await dp.listAllForwarding();
    for (const net of [a, b]) {
      t.same(all.get(index.get(net.vxlan)?.index ?? -1), await dp.listForwarding(net.vxlan), `${net.vxlan}: the same entries`);
    }
    t.same(all.get(index.get(empty.vxlan)?.index ?? -1) ?? EMPTY, EMPTY, 'a device without entries has none');
    t.notOk(all.has(index.get(a.bridge)?.index ?? -1), 'the bridge has none of ours');
  });

  t.test('addForwarding: many entries at once, as one by one; a bad entry fails alone; the device must exist', async (t) => {
    const net = await network(0x7b0);
    const n = 150;
    const want: Forwarding = {
      fdb: [...Array.from({ length: n }, (_, i) => ({ mac: nthMac(i), dst: nthPeer(i) })), { mac: ZERO, dst: PEER1 }, { mac: ZERO, dst: PEER2 }],
      neigh: Array.from({ length: n }, (_, i) => ({ ip: nthIp(i), mac: nthMac(i) })),
    };
    t.same(await dp.addForwarding(net.vxlan, want), [], 'no failures');
    const have = await dp.listForwarding(net.vxlan);
    t.equal(have.fdb.length, n + 2);
    t.equal(have.neigh.length, n);
    t.same(await dp.addForwarding(net.vxlan, want), [], 'again: nothing fails');
    t.same(await dp.listForwarding(net.vxlan), have, 'and nothing changes');

    const bad = { mac: 'ff:ff:ff:ff:ff:ff', dst: PEER1 };
    const failures = await dp.addForwarding(net.vxlan, { fdb: [bad, { mac: MAC_C, dst: PEER2 }], neigh: [{ ip: 'nope', mac: MAC_C }] });
    t.same(failures.map((f) => [f.kind, f.entry, (f.error as { code?: string }).code]), [
      ['fdb', bad, 'INVALID_OPTION'],
      ['neigh', { ip: 'nope', mac: MAC_C }, 'INVALID_OPTION'],
    ], 'the bad entries, each with its error');
    t.ok((await dp.listForwarding(net.vxlan)).fdb.some((e) => e.mac === MAC_C), 'the good one was added');
    t.same(await dp.addForwarding(net.vxlan, EMPTY), [], 'nothing to add');
    await t.rejects(dp.addForwarding(vxlanName(0x7b1), { fdb: [{ mac: MAC_A, dst: PEER1 }], neigh: [] }), {
      code: 'KERNEL_FAILURE',
      message: /no such vxlan device/,
    });
  });

  if (env.kernel) {
    t.test('addForwarding: an entry the kernel refuses fails alone, with its errno; the rest are written', async (t) => {
      // Below 1280 the kernel drops the device's IPv6 state: IPv6 neighbours are refused (EINVAL).
      const net = await network(0x7b2, { mtu: 1200 });
      const v6 = { ip: 'fd20::9', mac: nthMac(1) };
      const want: Forwarding = {
        fdb: Array.from({ length: 3 }, (_, i) => ({ mac: nthMac(i), dst: nthPeer(i) })),
        neigh: [{ ip: nthIp(0), mac: nthMac(0) }, v6, { ip: nthIp(2), mac: nthMac(2) }],
      };
      const failures = await dp.addForwarding(net.vxlan, want);
      t.same(failures.map((f) => [f.kind, f.entry, (f.error as { code?: string }).code]), [['neigh', v6, 'KERNEL_FAILURE']]);
      t.match(failures[0]?.error.message, `add neighbour ${net.vxlan}: EINVAL (fd20::9 lladdr ${nthMac(1)})`);
      t.same(await dp.listForwarding(net.vxlan), sortForwarding({ fdb: want.fdb, neigh: want.neigh.filter((n) => n !== v6) }));
      await t.rejects(dp.addNeigh(net.vxlan, v6), { code: 'KERNEL_FAILURE', message: /EINVAL/ }, 'one entry alone: rejected');
    });
  }

  t.test('ensureNetwork tells whether it created the VXLAN device (which then has no entries)', async (t) => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const spec = netSpec(0x7a0, 4789, ul, env);
    t.equal(await dp.ensureNetwork(spec), true, 'created');
    await dp.addFdb(spec.vxlan, { mac: MAC_A, dst: PEER1 });
    t.equal(await dp.ensureNetwork(spec), false, 'kept, entries and all');
    t.equal((await dp.listForwarding(spec.vxlan)).fdb.length, 1);
    t.equal(await dp.ensureNetwork({ ...spec, mtu: spec.mtu - 10 }), false, 'an MTU change converges in place');
    await dp.deleteLink(spec.vxlan);
    t.equal(await dp.ensureNetwork(spec), true, 'made again after it was deleted');
    t.same(await dp.listForwarding(spec.vxlan), EMPTY);
  });

  t.test('a VXLAN device recreated or deleted behind our back', async (t) => {
    const net = await network(0x780);
    await dp.addFdb(net.vxlan, { mac: MAC_A, dst: PEER1 }); // the adapter now knows the device
    await env.other.deleteLink(net.vxlan);
    await env.other.ensureNetwork(net);
    await dp.addFdb(net.vxlan, { mac: MAC_B, dst: PEER2 });
    await dp.addNeigh(net.vxlan, { ip: '10.20.0.6', mac: MAC_B });
    t.same(
      await dp.listForwarding(net.vxlan),
      { fdb: [{ mac: MAC_B, dst: PEER2 }], neigh: [{ ip: '10.20.0.6', mac: MAC_B }] },
      'written to the new device',
    );
    t.same(await env.other.listForwarding(net.vxlan), await dp.listForwarding(net.vxlan), 'both writers see the same');
    await env.other.deleteLink(net.vxlan);
    await t.rejects(dp.addNeigh(net.vxlan, { ip: '10.20.0.7', mac: MAC_C }), {
      code: 'KERNEL_FAILURE',
      message: `add neighbour ${net.vxlan}: no such vxlan device`,
    });
    await t.rejects(dp.deleteFdb(net.vxlan, { mac: MAC_B, dst: PEER2 }), {
      code: 'KERNEL_FAILURE',
      message: `delete fdb ${net.vxlan}: no such vxlan device`,
    });
  });

  t.test(`bulk: ${BULK} neighbour + ${BULK} FDB entries`, async (t) => {
    const net = await network(0x770);
    const ms = (since: bigint): number => Number(process.hrtime.bigint() - since) / 1e6;
    let start = process.hrtime.bigint();
    for (let i = 0; i < BULK; i++) {
      await dp.addNeigh(net.vxlan, { ip: nthIp(i), mac: nthMac(i) });
      await dp.addFdb(net.vxlan, { mac: nthMac(i), dst: nthPeer(i) });
    }
    const add = ms(start);
    start = process.hrtime.bigint();
    const f = await dp.listForwarding(net.vxlan);
    const list = ms(start);
    t.equal(f.neigh.length, BULK, 'all neighbour entries listed');
    t.equal(f.fdb.length, BULK, 'all FDB entries listed');
    t.same(f.neigh[0], { ip: nthIp(0), mac: nthMac(0) });
    start = process.hrtime.bigint();
    for (let i = 0; i < BULK; i++) {
      await dp.addNeigh(net.vxlan, { ip: nthIp(i), mac: nthMac(i) });
      await dp.addFdb(net.vxlan, { mac: nthMac(i), dst: nthPeer(i) });
    }
    const replay = ms(start);
    start = process.hrtime.bigint();
    const part = Math.min(BULK, 1000);
    for (let i = 0; i < part; i++) {
      await dp.deleteNeigh(net.vxlan, { ip: nthIp(i), mac: nthMac(i) });
      await dp.deleteFdb(net.vxlan, { mac: nthMac(i), dst: nthPeer(i) });
    }
    const del = ms(start);
    const after = await dp.listForwarding(net.vxlan);
    t.equal(after.neigh.length + after.fdb.length, 2 * (BULK - part), 'deleted');
    const line = `${env.name}: add ${BULK}+${BULK} ${add.toFixed(0)} ms (${((add * 1000) / (2 * BULK)).toFixed(0)} µs/entry), list ${list.toFixed(0)} ms, replay ${replay.toFixed(0)} ms, delete ${part}+${part} ${del.toFixed(0)} ms`;
    t.comment(line);
    t.pass(line); // visible in the default reporter too
  });
};

runDataplaneContract(import.meta.url, forwardingContract);
