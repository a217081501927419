import { AttrStream, rt } from 'netlink';
import t from 'tap';
import { parseFdb, parseNeigh } from './neigh-message.js';

/** An RTM_NEWNEIGH payload as the kernel sends it, written with the `netlink` package's encoder. */
const message = (data: rt.Neighbor, attrs: rt.NeighborAttrs): Buffer => {
  const out = new AttrStream();
  rt.formatNeighborMessage({ kind: 'neighbor', data, attrs }, out);
  return Buffer.concat(out.bufs);
};

const mac = Buffer.from([2, 0x43, 0, 0, 0, 7]);
const vtep = Buffer.from([192, 168, 100, 1]);
const ip6 = Buffer.from('fd000000000000000000000000000009', 'hex');

t.test('FDB entries: ours are self, permanent, with a unicast dst', async (t) => {
  const fdb = (data: Partial<rt.Neighbor>, attrs: rt.NeighborAttrs): Buffer =>
    message({ family: 7, ifindex: 42, flags: { self: true }, state: { permanent: true }, ...data }, attrs);
  t.same(parseFdb(fdb({}, { lladdr: mac, dst: vtep, master: 9 })), [42, { mac: '02:43:00:00:00:07', dst: '192.168.100.1' }]);
  t.same(parseFdb(fdb({}, { lladdr: Buffer.alloc(6), dst: vtep })), [42, { mac: '00:00:00:00:00:00', dst: '192.168.100.1' }], 'the flood entry');
  t.equal(parseFdb(fdb({ flags: {} }, { lladdr: mac, dst: vtep })), undefined, 'not self: the bridge master table');
  t.equal(parseFdb(fdb({ state: { noarp: true } }, { lladdr: mac, dst: vtep })), undefined, 'not permanent');
  t.equal(parseFdb(fdb({}, { lladdr: mac })), undefined, 'no dst: a port address');
  t.equal(parseFdb(fdb({}, { lladdr: Buffer.alloc(6), dst: Buffer.from([239, 1, 1, 1]) })), undefined, 'the group entry');
  t.equal(parseFdb(fdb({ family: 2 }, { lladdr: mac, dst: vtep })), undefined, 'not AF_BRIDGE');
  t.equal(parseFdb(Buffer.alloc(8)), undefined, 'shorter than struct ndmsg');
});

t.test('neighbour entries: permanent, not proxy, IPv4 and IPv6', async (t) => {
  const neigh = (data: Partial<rt.Neighbor>, attrs: rt.NeighborAttrs): Buffer =>
    message({ family: 2, ifindex: 42, state: { permanent: true }, ...data }, attrs);
  t.same(parseNeigh(neigh({}, { dst: Buffer.from([10, 1, 2, 3]), lladdr: mac })), [42, { ip: '10.1.2.3', mac: '02:43:00:00:00:07' }]);
  t.same(parseNeigh(neigh({ family: 10 }, { dst: ip6, lladdr: mac })), [42, { ip: 'fd00::9', mac: '02:43:00:00:00:07' }]);
  t.equal(parseNeigh(neigh({ state: { reachable: true } }, { dst: Buffer.from([10, 1, 2, 3]), lladdr: mac })), undefined, 'resolved by the kernel');
  t.equal(parseNeigh(neigh({ flags: { proxy: true } }, { dst: Buffer.from([10, 1, 2, 3]) })), undefined, 'a proxy entry');
  t.equal(parseNeigh(neigh({ family: 7 }, { dst: vtep, lladdr: mac })), undefined, 'an FDB entry');
  t.equal(parseNeigh(neigh({}, { dst: Buffer.from([10, 1, 2, 3]), lladdr: Buffer.alloc(4) })), undefined, 'not an Ethernet address');
});
