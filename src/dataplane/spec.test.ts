import t from 'tap';
import type { BridgeNetworkDevices } from './dataplane.js';
import {
  checkEndpointSpec,
  checkFdbEntry,
  checkNeighEntry,
  checkNetworkSpec,
  checkVxlanMtu,
  sortForwarding,
  type VxlanState,
} from './spec.js';
import { maxVxlanMtu } from './vxlan-mtu.js';
import { describeVxlanChanges, vxlanChanges, vxlanDifferences, vxlanIncompat } from './vxlan-compat.js';

const spec: BridgeNetworkDevices = {
  layout: 'bridge',
  vni: 42,
  bridge: 'tsbr-00002a',
  vxlan: 'tsvx-00002a',
  port: 4789,
  local: '10.0.0.2',
  underlayIndex: 2,
  mtu: 1450,
};
const good: VxlanState = { vni: 42, port: 4789, local: '10.0.0.2', link: 2, learning: false, proxy: true, l2miss: false, l3miss: false };

t.test('vxlanIncompat explains why a device must be recreated', async (t) => {
  t.equal(vxlanIncompat('vxlan', good, spec), '');
  t.equal(vxlanIncompat('bridge', undefined, spec), 'kind is bridge, want vxlan');
  t.equal(vxlanIncompat('', undefined, spec), 'kind is unknown, want vxlan');
  t.equal(vxlanIncompat('vxlan', { ...good, vni: 43 }, spec), 'vni 43, want 42');
  t.equal(vxlanIncompat('vxlan', { ...good, port: 8472, learning: true, proxy: false }, spec), 'port 8472, want 4789, proxy off, want on');
  const { local: _l, ...noLocal } = good;
  t.equal(vxlanIncompat('vxlan', noLocal, spec), 'local unset, want 10.0.0.2');
  t.equal(vxlanIncompat('vxlan', { ...good, local: 'fd77::2' }, spec), 'local fd77::2, want 10.0.0.2', 'another family');
  t.equal(vxlanIncompat('vxlan', { ...good, link: 3, local: '10.0.0.9', learning: true }, spec), '', 'changed in place instead');
  t.equal(vxlanIncompat('vxlan', { ...good, l2miss: true, l3miss: true }, spec), 'l2miss on, want off, l3miss on, want off');
  t.equal(vxlanIncompat('vxlan', { ...good, local: 'fd77::2' }, { ...spec, local: 'FD77:0::2' }), '', 'IPv6 compared canonically');
});

t.test('vxlanDifferences: one list, each difference marked in place or not', async (t) => {
  t.same(vxlanDifferences('vxlan', good, spec), []);
  t.same(vxlanDifferences('bridge', undefined, spec), [{ what: 'kind', have: 'bridge', want: 'vxlan', inPlace: false }]);
  t.same(
    vxlanDifferences('vxlan', { ...good, link: 3, local: '10.0.0.9', learning: true, l2miss: true }, spec).map((d) => `${d.what}:${d.inPlace}`),
    ['local:true', 'link:true', 'learning:true', 'l2miss:false'],
  );
  t.same(vxlanDifferences('vxlan', { ...good, local: 'fd77::2' }, spec).map((d) => `${d.what}:${d.inPlace}`), ['local:false'], 'across families: recreate');
});

t.test('vxlanChanges: what is changed in place', async (t) => {
  t.same(vxlanChanges(good, spec), {});
  const c = vxlanChanges({ ...good, link: 3, local: '10.0.0.9', learning: true }, spec);
  t.same(c, { local: '10.0.0.2', link: 2, learningOff: true });
  t.equal(describeVxlanChanges({ ...good, link: 3, local: '10.0.0.9', learning: true }, c), 'local 10.0.0.9 -> 10.0.0.2, link 3 -> 2, learning on -> off');
  t.equal(describeVxlanChanges(good, {}), '');
  t.same(vxlanChanges({ ...good, local: 'fd77::2' }, { ...spec, local: 'FD77:0::2' }), {}, 'IPv6 compared canonically');
});

t.test('checkNetworkSpec', async (t) => {
  t.same(checkNetworkSpec({ ...spec, local: 'FD77::0002' }), { ...spec, local: 'fd77::2' });
  for (const [what, bad] of [
    ['vni', { vni: 0 }],
    ['vni', { vni: 1.5 }],
    ['port', { port: 65536 }],
    ['mtu', { mtu: 67 }],
    ['underlay', { underlayIndex: 0 }],
    ['names', { vxlan: spec.bridge }],
    ['prefix', { bridge: 'br0' }],
    ['local', { local: '10.0.0' }],
  ] as const) {
    t.throws(() => checkNetworkSpec({ ...spec, ...bad }), { code: 'INVALID_OPTION' }, what);
  }
});

t.test('checkEndpointSpec', async (t) => {
  const ep = { layout: 'bridge' as const, hostIf: 'tsh0123456789a', containerIf: 'tsc0123456789a', bridge: 'tsbr-00002a', mtu: 1450, mac: '02:42:AC:11:00:02' };
  t.equal(checkEndpointSpec(ep).mac, '02:42:ac:11:00:02');
  t.throws(() => checkEndpointSpec({ ...ep, containerIf: ep.hostIf }), { code: 'INVALID_OPTION' });
  t.throws(() => checkEndpointSpec({ ...ep, mac: 'ff:ff:ff:ff:ff:ff' }), { code: 'INVALID_OPTION', message: /unicast/ });
});

t.test('checkVxlanMtu', async (t) => {
  t.equal(maxVxlanMtu(1500, 4), 1450);
  t.equal(maxVxlanMtu(9000, 6), 8930);
  t.doesNotThrow(() => checkVxlanMtu(spec, { name: 'eth0', mtu: 1500 }));
  t.throws(() => checkVxlanMtu({ ...spec, mtu: 1451 }, { name: 'eth0', mtu: 1500 }), {
    code: 'INVALID_OPTION',
    message: 'ensure network tsbr-00002a: MTU 1451 is above 1450, the most VXLAN over IPv4 allows on underlay eth0 (MTU 1500)',
  });
  t.throws(() => checkVxlanMtu({ ...spec, local: 'fd77::2' }, { name: 'eth0', mtu: 1500 }), { message: /IPv6/ });
  t.throws(() => checkVxlanMtu(spec, undefined), { code: 'KERNEL_FAILURE', message: /underlay interface #2 does not exist/ });
});

t.test('the multicast group', async (t) => {
  t.same(checkNetworkSpec({ ...spec, group: '239.1.1.1' }), { ...spec, group: '239.1.1.1' });
  t.same(checkNetworkSpec({ ...spec, local: 'fd77::2', group: 'FF05:0::1' }), { ...spec, local: 'fd77::2', group: 'ff05::1' });
  t.notOk('group' in checkNetworkSpec(spec), 'absent stays absent');
  t.throws(() => checkNetworkSpec({ ...spec, group: '10.0.0.1' }), { code: 'INVALID_OPTION', message: 'VXLAN group "10.0.0.1" is not a multicast IP address' });
  t.throws(() => checkNetworkSpec({ ...spec, group: 'ff05::1' }), {
    code: 'INVALID_OPTION',
    message: 'VXLAN group ff05::1 is IPv6 but local 10.0.0.2 is IPv4',
  });
  t.equal(vxlanIncompat('vxlan', { ...good, group: '239.1.1.1' }, { ...spec, group: '239.1.1.1' }), '');
  t.equal(vxlanIncompat('vxlan', good, { ...spec, group: '239.1.1.1' }), 'group unset, want 239.1.1.1');
  t.equal(vxlanIncompat('vxlan', { ...good, group: '239.1.1.1' }, spec), 'group 239.1.1.1, want unset');
  t.equal(vxlanIncompat('vxlan', { ...good, group: '239.1.1.1' }, { ...spec, group: '239.1.1.2' }), 'group 239.1.1.1, want 239.1.1.2');
});

t.test('forwarding entries', async (t) => {
  t.same(checkFdbEntry('tsvx-00002a', { mac: '02:42:AC:11:00:02', dst: '10.0.0.3' }, 4), { mac: '02:42:ac:11:00:02', dst: '10.0.0.3' });
  t.same(checkFdbEntry('tsvx-00002a', { mac: '00:00:00:00:00:00', dst: 'FD77::3' }, undefined), { mac: '00:00:00:00:00:00', dst: 'fd77::3' });
  t.throws(() => checkFdbEntry('tsvx-00002a', { mac: '02:42:ac:11:00:02', dst: 'fd77::3' }, 4), {
    code: 'INVALID_OPTION',
    message: "FDB entry on tsvx-00002a: dst fd77::3 is IPv6 but the device's local address is IPv4",
  });
  for (const [what, mac, dst] of [
    ['broadcast MAC', 'ff:ff:ff:ff:ff:ff', '10.0.0.3'],
    ['multicast dst', '02:42:ac:11:00:02', '224.0.0.1'],
    ['unspecified dst', '02:42:ac:11:00:02', '::'],
    ['dst not an IP', '02:42:ac:11:00:02', 'host'],
  ] as const) {
    t.throws(() => checkFdbEntry('tsvx-00002a', { mac, dst }, undefined), { code: 'INVALID_OPTION' }, what);
  }
  t.same(checkNeighEntry('tsvx-00002a', { ip: 'FD20::0:5', mac: '02:42:AC:11:00:02' }), { ip: 'fd20::5', mac: '02:42:ac:11:00:02', family: 6 });
  t.throws(() => checkNeighEntry('tsvx-00002a', { ip: '10.0.0.5', mac: '00:00:00:00:00:00' }), { code: 'INVALID_OPTION' });
  t.throws(() => checkNeighEntry('tsvx-00002a', { ip: '255.255.255.255', mac: '02:42:ac:11:00:02' }), {
    code: 'INVALID_OPTION',
    message: 'neighbour entry on tsvx-00002a: IP "255.255.255.255" is not a unicast IP address',
  });
});

t.test('sortForwarding: MAC then dst; IPv4 before IPv6, numerically', async (t) => {
  t.same(
    sortForwarding({
      fdb: [
        { mac: '02:00:00:00:00:01', dst: '10.0.0.10' },
        { mac: '00:00:00:00:00:00', dst: '10.0.0.9' },
        { mac: '00:00:00:00:00:00', dst: '10.0.0.10' },
      ],
      neigh: [
        { ip: 'fd00::1', mac: '02:00:00:00:00:01' },
        { ip: '10.0.0.10', mac: '02:00:00:00:00:01' },
        { ip: '10.0.0.9', mac: '02:00:00:00:00:01' },
      ],
    }),
    {
      fdb: [
        { mac: '00:00:00:00:00:00', dst: '10.0.0.9' },
        { mac: '00:00:00:00:00:00', dst: '10.0.0.10' },
        { mac: '02:00:00:00:00:01', dst: '10.0.0.10' },
      ],
      neigh: [
        { ip: '10.0.0.9', mac: '02:00:00:00:00:01' },
        { ip: '10.0.0.10', mac: '02:00:00:00:00:01' },
        { ip: 'fd00::1', mac: '02:00:00:00:00:01' },
      ],
    },
  );
});
