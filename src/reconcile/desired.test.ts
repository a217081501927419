import t from 'tap';
import type { Underlay } from '../dataplane/dataplane.js';
import { type EndpointRecord, type NetworkRecord, type NodeRecord, asEndpointId, asNetworkId, asPoolId, asVni } from '../model.js';
import { FLOOD_MAC } from '../dataplane/dataplane.js';
import { computeDesired, removableVnis, vxlanMembers } from './desired.js';
import { planForwarding } from './plan.js';

const underlay: Underlay = { ifname: 'eth0', ifindex: 2, address: '10.0.0.1', family: 4, mtu: 1500 };
const net = (o: Partial<NetworkRecord> = {}): NetworkRecord => ({
  id: asNetworkId('tsoverlay-local:10.20.0.0_24'),
  vni: asVni(4096),
  aliases: { nA: 'A', nB: 'B' },
  deleted: false,
  mtu: 1450,
  internal: false,
  ipv4: [{ poolId: asPoolId('tsoverlay-local:10.20.0.0_24'), pool: '10.20.0.0/24' }],
  ipv6: [],
  options: {},
  createdBy: 'A',
  createdAt: 'x',
  ...o,
});
const ep = (id: string, node: string, ip: string, ipv6?: string): EndpointRecord => ({
  id: asEndpointId(id),
  networkId: asNetworkId('k'),
  node,
  ipv4: `${ip}/24`,
  ...(ipv6 ? { ipv6: `${ipv6}/64` } : {}),
  mac: `02:42:0a:14:00:${ip.split('.')[3]!.padStart(2, '0')}`,
  hostIf: `tsh${id}`,
  containerIf: `tsc${id}`,
});
const node = (name: string, address: string): NodeRecord => ({ node: name, address, vxlanPort: 4789, hostname: name, version: '1', startedAt: 'x' });
const nodes = [node('A', '10.0.0.1'), node('B', '10.0.0.2'), node('C', '10.0.0.3')];

t.test('local devices, remote entries and one flood entry per peer node', async (t) => {
  const d = computeDesired({
    networks: [{ net: net(), endpoints: [ep('aaaaaa1', 'A', '10.20.0.2'), ep('bbbbbb1', 'B', '10.20.0.3', 'fd00::3'), ep('bbbbbb2', 'B', '10.20.0.4')] }],
    nodes,
    me: 'A',
    underlay,
    vxlanPort: 4789,
  });
  t.equal(d.networks.length, 1);
  t.same(d.endpoints.map((e) => (e.layout === 'bridge' ? e.hostIf : undefined)), ['tshaaaaaa1']);
  const f = d.forwarding.get('tsvx-001000')!;
  t.same(f.fdb, [
    { mac: '02:42:0a:14:00:03', dst: '10.0.0.2' },
    { mac: '02:42:0a:14:00:04', dst: '10.0.0.2' },
    { mac: FLOOD_MAC, dst: '10.0.0.2' },
  ]);
  t.same(f.neigh, [
    { ip: '10.20.0.3', mac: '02:42:0a:14:00:03' },
    { ip: 'fd00::3', mac: '02:42:0a:14:00:03' },
    { ip: '10.20.0.4', mac: '02:42:0a:14:00:04' },
  ]);
});

t.test('endpoints of dead nodes are not programmed; networks without a local alias are not built', async (t) => {
  const d = computeDesired({
    networks: [
      { net: net(), endpoints: [ep('cccccc1', 'C', '10.20.0.9')] },
      { net: net({ id: asNetworkId('other'), vni: asVni(5000), aliases: { nB: 'B' } }), endpoints: [] },
    ],
    nodes: nodes.filter((n) => n.node !== 'C'),
    me: 'A',
    underlay,
    vxlanPort: 4789,
  });
  t.same(d.networks.map((n) => n.vni), [4096]);
  t.same(d.forwarding.get('tsvx-001000'), { fdb: [], neigh: [] });
});

t.test('a network this node has but no endpoint of its own in: its devices, and no remote entries (they would serve no container here)', async (t) => {
  const d = computeDesired({
    networks: [{ net: net(), endpoints: [ep('bbbbbb1', 'B', '10.20.0.3'), ep('cccccc1', 'C', '10.20.0.4')] }],
    nodes,
    me: 'A',
    underlay,
    vxlanPort: 4789,
    dnsAddress: '169.254.53.53',
  });
  t.same(d.networks.map((n) => n.vxlan), ['tsvx-001000'], 'the devices are built (the engine has the network)');
  t.same(d.endpoints, []);
  t.same(d.forwarding.get('tsvx-001000'), { fdb: [], neigh: [] }, 'desired empty: entries left from an earlier endpoint here go');
  t.same(d.resolver?.routes.map((r) => r.dst), ['10.20.0.0/24'], 'the resolver side stays (it needs no store read)');
  t.same(d.conflicts, undefined);
});

t.test('taking part is what the node knows of its own Docker calls: its own record missing keeps its peers programmed', async (t) => {
  const base = { nodes, me: 'A', underlay, vxlanPort: 4789 };
  const remote = [ep('bbbbbb1', 'B', '10.20.0.3')];
  const kept = computeDesired({ ...base, networks: [{ net: net(), endpoints: remote, takesPart: true }] });
  t.same(kept.forwarding.get('tsvx-001000')?.neigh, [{ ip: '10.20.0.3', mac: '02:42:0a:14:00:03' }], 'its container is still here: entries kept');
  const none = computeDesired({ ...base, networks: [{ net: net(), endpoints: [], takesPart: false }] });
  t.same(none.forwarding.get('tsvx-001000'), { fdb: [], neigh: [] }, 'not taken part in: none');
});

t.test('a multicast network gets a group and no flood entries', async (t) => {
  const d = computeDesired({ networks: [{ net: net({ multicast: '239.1.1.1' }), endpoints: [ep('aaaaaa1', 'A', '10.20.0.2'), ep('bbbbbb1', 'B', '10.20.0.3')] }], nodes, me: 'A', underlay, vxlanPort: 4789 });
  t.equal(d.networks[0]?.group, '239.1.1.1');
  t.same(d.forwarding.get('tsvx-001000')?.fdb, [{ mac: '02:42:0a:14:00:03', dst: '10.0.0.2' }]);
});

t.test('a macvlan-mode network: the mode on its devices, its endpoints as macvlans on its VXLAN device', async (t) => {
  const d = computeDesired({
    networks: [{ net: net({ mode: 'macvlan' }), endpoints: [ep('aaaaaa1', 'A', '10.20.0.2'), ep('bbbbbb1', 'B', '10.20.0.3')] }],
    nodes,
    me: 'A',
    underlay,
    vxlanPort: 4789,
  });
  t.match(d.networks, [{ layout: 'macvlan', hostMacvlan: 'tsbr-001000', vxlan: 'tsvx-001000' }]);
  t.match(d.endpoints, [{ layout: 'macvlan', containerIf: 'tscaaaaaa1', vxlan: 'tsvx-001000' }]);
  t.same(d.forwarding.get('tsvx-001000')?.neigh, [{ ip: '10.20.0.3', mac: '02:42:0a:14:00:03' }], 'remote entries as in bridge mode');
  const plain = computeDesired({ networks: [{ net: net(), endpoints: [ep('aaaaaa1', 'A', '10.20.0.2')] }], nodes, me: 'A', underlay, vxlanPort: 4789 });
  t.equal(plain.networks[0]?.layout, 'bridge');
  t.equal(plain.endpoints[0]?.layout, 'bridge');
});

t.test('planForwarding: neighbours before FDB on add, stale entries removed, nothing when equal', async (t) => {
  const want = { fdb: [{ mac: '02:00:00:00:00:01', dst: '10.0.0.2' }, { mac: FLOOD_MAC, dst: '10.0.0.2' }], neigh: [{ ip: '10.20.0.3', mac: '02:00:00:00:00:01' }] };
  const a = planForwarding('tsvx-001000', want, { fdb: [], neigh: [] });
  t.same(a.map((x) => x.kind), ['addNeigh', 'addFdb', 'addFdb']);
  t.same(planForwarding('tsvx-001000', want, want), []);
  const stale = planForwarding('tsvx-001000', { fdb: [], neigh: [] }, want);
  t.same(stale.map((x) => x.kind), ['deleteFdb', 'deleteFdb', 'deleteNeigh']);
  const moved = planForwarding('tsvx-001000', { fdb: want.fdb, neigh: [{ ip: '10.20.0.3', mac: '02:00:00:00:00:09' }] }, want);
  t.same(moved.map((x) => x.kind), ['addNeigh']);
});

t.test('removable VNIs: only explicit removals, never a VNI in use again', async (t) => {
  const base = { nodes: [], me: 'A', underlay, vxlanPort: 4789 };
  const removable = (o: Partial<Parameters<typeof removableVnis>[0]>) => [...removableVnis({ ...base, networks: [], ...o })].sort();
  t.same(removable({}), [], 'an empty store removes nothing');
  t.same(removable({ networks: [{ net: net({ deleted: true, aliases: { nB: 'B' } }), endpoints: [] }] }), [4096], 'marked deleted, gone from this engine');
  t.same(removable({ networks: [{ net: net({ deleted: true }), endpoints: [] }] }), [], 'marked deleted, still on this engine (containers use it)');
  t.same(removable({ tombstones: [{ vni: 4097 }] }), [4097], 'a tombstone of a VNI nobody claims');
  t.same(removable({ tombstones: [{ vni: 4096 }], claimedVnis: new Set([4096]) }), [], 'a tombstone of a VNI claimed again (the new record unreadable or not)');
  t.same(removable({ tombstones: [{ vni: 4096 }], networks: [{ net: net(), endpoints: [] }] }), [], 'a tombstone of a VNI a live network holds');
});

t.test('VXLAN members: every live node of the underlay family, this node always among them', async (t) => {
  const d = computeDesired({ networks: [], nodes: [node('C', '10.0.0.3'), node('B', '10.0.0.2'), node('V6', 'fd00::9')], me: 'A', underlay, vxlanPort: 4789 });
  t.same(d.vxlanMembers, { port: 4789, members: ['10.0.0.1', '10.0.0.2', '10.0.0.3'] }, 'sorted, own VTEP added, other family left out');
  const alone = computeDesired({ networks: [], nodes: [], me: 'A', underlay, vxlanPort: 4790 });
  t.same(alone.vxlanMembers, { port: 4790, members: ['10.0.0.1'] }, 'never empty: the own VTEP even before it is registered');
  const v6 = vxlanMembers([node('B', 'fd00::2'), node('C', '10.0.0.3')], { ...underlay, address: 'fd00::1', family: 6 }, 4789);
  t.same(v6.members, ['fd00::1', 'fd00::2']);
});

t.test('two records with one IP (an orphan and a new container): one FDB and one neighbour entry, toward the newer', async (t) => {
  const orphan = ep('ffffff1', 'B', '10.20.0.9');
  const fresh = ep('0000001', 'C', '10.20.0.9');
  const created = new Map([[orphan.id as string, 100], [fresh.id as string, 200]]);
  for (const endpoints of [[orphan, fresh], [fresh, orphan]]) {
    const d = computeDesired({ networks: [{ net: net({ aliases: { nA: 'A' } }), endpoints: [...endpoints, ep('aaaaaa1', 'A', '10.20.0.2')], created }], nodes, me: 'A', underlay, vxlanPort: 4789 });
    const f = d.forwarding.get('tsvx-001000')!;
    t.same(f.fdb.filter((e) => e.mac !== FLOOD_MAC), [{ mac: fresh.mac, dst: '10.0.0.3' }], 'the MAC goes to the newer record\'s node');
    t.same(f.neigh, [{ ip: '10.20.0.9', mac: fresh.mac }]);
    t.match(d.conflicts, [{ winner: { id: fresh.id }, loser: { id: orphan.id } }], 'the conflict is told');
  }
});
