import { AttrStream, ifla, rt, type StreamData } from 'netlink';
import t from 'tap';
import { parseLinkMessage } from './link-message.js';
import { IFLA_MACVLAN_BC_CUTOFF } from './linux.js';

const encode = (data: StreamData): Buffer => {
  const out = new AttrStream();
  out.emit(data);
  return Buffer.concat(out.bufs);
};

/** A link message as the kernel sends it, written with the `netlink` package's encoder. */
const message = (data: rt.Link, attrs: ifla.LinkAttrs): Buffer => {
  const out = new AttrStream();
  rt.formatLinkMessage({ kind: 'link', data, attrs }, out);
  return Buffer.concat(out.bufs);
};

const port = Buffer.from([0x12, 0xb5]); // 4789, network byte order

t.test('a VXLAN device: every field we compare on', async (t) => {
  const vxlan = encode(
    ifla.formatVxlan({ id: 42, port, link: 3, local: Buffer.from([192, 168, 1, 2]), learning: 0, proxy: 1, l2miss: 0, l3miss: 0 }),
  );
  const b = message(
    { index: 77, flags: { up: true } },
    {
      ifname: 'tsvx-00002a',
      mtu: 1450,
      master: 76,
      address: Buffer.from([2, 0, 0, 0, 0, 9]),
      linkinfo: encode(ifla.formatInfo({ kind: 'vxlan', data: vxlan })),
      stats64: { rxPackets: 5n, txPackets: 7n }, // what a request without SKIP_STATS gets back: skipped
    },
  );
  t.same(parseLinkMessage(b), {
    index: 77,
    name: 'tsvx-00002a',
    kind: 'vxlan',
    mtu: 1450,
    up: true,
    mac: '02:00:00:00:00:09',
    master: 76,
    vxlan: { vni: 42, port: 4789, learning: false, proxy: true, l2miss: false, l3miss: false, local: '192.168.1.2', link: 3 },
  });
});

t.test('a macvlan: its lower device and its mode', async (t) => {
  const b = message(
    { index: 80 },
    {
      ifname: 'tscabcdef01234',
      mtu: 1450,
      link: Buffer.from(Uint32Array.of(77).buffer),
      address: Buffer.from([2, 0x42, 10, 20, 0, 5]),
      linkinfo: encode(ifla.formatInfo({ kind: 'macvlan', data: encode(ifla.formatMacvlan({ mode: 4, flags: 0 })) })),
    },
  );
  t.same(parseLinkMessage(b), { index: 80, name: 'tscabcdef01234', kind: 'macvlan', mtu: 1450, up: false, mac: '02:42:0a:14:00:05', link: 77, macvlanMode: 4 });
  const bare = parseLinkMessage(message({ index: 81 }, { ifname: 'tsbr-00002a', linkinfo: encode(ifla.formatInfo({ kind: 'macvlan' })) }));
  t.same(bare, { index: 81, name: 'tsbr-00002a', kind: 'macvlan', mtu: 0, up: false }, 'no data: no mode');
});

t.test('a macvlan: its broadcast cutoff (a signed attribute the kernel reports when it is not 1)', async (t) => {
  const withCutoff = (cutoff: number) =>
    parseLinkMessage(message({ index: 82 }, {
      ifname: 'tsbr-00002b',
      linkinfo: encode(ifla.formatInfo({
        kind: 'macvlan',
        data: encode((out: AttrStream) => {
          out.emit(ifla.formatMacvlan({ mode: 4 }));
          out.push(IFLA_MACVLAN_BC_CUTOFF, Buffer.from(Int32Array.of(cutoff).buffer));
        }),
      })),
    }));
  t.match(withCutoff(-1), { kind: 'macvlan', macvlanMode: 4, macvlanBcCutoff: -1 });
  t.match(withCutoff(3), { macvlanMode: 4, macvlanBcCutoff: 3 });
  const none = parseLinkMessage(message({ index: 83 }, {
    ifname: 'tsbr-00002c',
    linkinfo: encode(ifla.formatInfo({ kind: 'macvlan', data: encode(ifla.formatMacvlan({ mode: 4 })) })),
  }));
  t.equal(none?.macvlanBcCutoff, undefined, 'not reported: the default');
});

t.test('a plain device: no kind, no master, down', async (t) => {
  t.same(parseLinkMessage(message({ index: 1 }, { ifname: 'lo', mtu: 65536, address: Buffer.alloc(6) })), {
    index: 1,
    name: 'lo',
    kind: '',
    mtu: 65536,
    up: false,
    mac: '00:00:00:00:00:00',
  });
  const bridge = parseLinkMessage(message({ index: 5, flags: { up: true } }, { ifname: 'tsbr-00002a', linkinfo: encode(ifla.formatInfo({ kind: 'bridge' })) }));
  t.match(bridge, { kind: 'bridge', up: true, mtu: 0 });
  t.notOk(bridge && 'vxlan' in bridge);
});

t.test('keep: a refused name is not parsed; short or malformed messages', async (t) => {
  const b = message({ index: 9 }, { ifname: 'eth0', mtu: 1500 });
  t.equal(parseLinkMessage(b, (n) => n.startsWith('ts')), undefined);
  t.match(parseLinkMessage(b, (n) => n === 'eth0'), { name: 'eth0', mtu: 1500 });
  t.equal(parseLinkMessage(Buffer.alloc(10)), undefined, 'shorter than struct ifinfomsg');
  const cut = Buffer.concat([b, Buffer.from([0xff, 0x00, 0x03, 0x00])]); // an attribute longer than the message
  t.match(parseLinkMessage(cut), { name: 'eth0', mtu: 1500 }, 'the attributes before it are read');
});
