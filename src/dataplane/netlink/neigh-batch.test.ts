import { EventEmitter } from 'node:events';
import { AttrStream, type NetlinkMessage, rt, type RtNetlinkSocket } from 'netlink';
import t from 'tap';
import { KernelError } from './kernel-error.js';
import { BATCH, neighBody, type NeighRequest, sendNeighRequests } from './neigh-batch.js';

const ip4 = Buffer.from([10, 1, 2, 3]);
const ip6 = Buffer.from('fd000000000000000000000000000001', 'hex');
const mac = Buffer.from([2, 0, 0, 0, 0, 7]);

/**
 * The same message as the `netlink` package writes it, with the last
 * attribute padded to 4 bytes as iproute2 does (the package leaves that to
 * the message padding).
 */
const packageBody = (data: rt.Neighbor, attrs: rt.NeighborAttrs): Buffer => {
  const out = new AttrStream();
  rt.formatNeighborMessage({ kind: 'neighbor', data, attrs }, out);
  const b = Buffer.concat(out.bufs);
  return Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
};

t.test('bodies are byte for byte what the netlink package writes', async (t) => {
  t.same(
    neighBody(7, 42, 0x2, ip4, mac),
    packageBody({ family: 7, ifindex: 42, flags: { self: true }, state: { permanent: true } }, { dst: ip4, lladdr: mac }),
    'FDB entry (AF_BRIDGE, NTF_SELF)',
  );
  t.same(
    neighBody(2, 42, 0, ip4, mac),
    packageBody({ family: 2, ifindex: 42, state: { permanent: true } }, { dst: ip4, lladdr: mac }),
    'IPv4 neighbour',
  );
  t.same(
    neighBody(10, 70000, 0, ip6, mac),
    packageBody({ family: 10, ifindex: 70000, state: { permanent: true } }, { dst: ip6, lladdr: mac }),
    'IPv6 neighbour',
  );
});

/**
 * A socket that answers like the kernel: each message of a sent buffer runs
 * in order; `refuse` decides the errno of a message by its position overall.
 */
const kernelLike = (opts: { refuse?: (n: number) => number; answer?: boolean; sendError?: Error } = {}) => {
  const sent: Array<{ buf: Buffer }> = [];
  const nl = new EventEmitter() as EventEmitter & { generateSeq(): number; socket: { send: (b: Buffer, o: unknown, cb: (e?: Error) => void) => void } };
  let seq = 1;
  let n = 0;
  nl.generateSeq = () => seq++;
  nl.socket = {
    send: (buf, _o, cb) => {
      sent.push({ buf });
      const error = opts.sendError;
      setImmediate(() => cb(error));
      if (error) return;
      const replies: NetlinkMessage[] = [];
      for (let at = 0; at < buf.length; ) {
        const len = buf.readUInt32LE(at);
        const flags = buf.readUInt16LE(at + 6);
        const msgSeq = buf.readUInt32LE(at + 8);
        const errno = opts.refuse?.(n++) ?? 0;
        if (errno !== 0 || flags & 0x4) {
          const data = Buffer.alloc(4 + 16);
          data.writeInt32LE(errno, 0);
          replies.push({ type: 2, flags: 0, seq: msgSeq, port: 0, data } as NetlinkMessage);
        }
        at += len;
      }
      // one datagram per answer, as the kernel sends them
      if (opts.answer !== false) for (const r of replies) setImmediate(() => nl.emit('message', [r]));
    },
  };
  return { s: { socket: nl } as unknown as RtNetlinkSocket, sent, nl };
};

const req = (i: number): NeighRequest => ({ flags: 0x400 | 0x100, body: neighBody(2, 5, 0, Buffer.from([10, 0, i >> 8, i & 255]), mac) });

t.test('requests go many to a sendmsg; only the last of each asks for an ACK', async (t) => {
  const k = kernelLike();
  const failed = await sendNeighRequests(k.s, Array.from({ length: BATCH * 2 + 3 }, (_, i) => req(i)), 1000);
  t.equal(failed.size, 0);
  t.equal(k.sent.length, 3, 'three sendmsg calls');
  const types: number[] = [];
  const flags = k.sent.map(({ buf }) => {
    const f: number[] = [];
    for (let at = 0; at < buf.length; at += buf.readUInt32LE(at)) {
      types.push(buf.readUInt16LE(at + 4));
      f.push(buf.readUInt16LE(at + 6));
    }
    return f;
  });
  t.same(flags.map((f) => f.length), [BATCH, BATCH, 3], 'BATCH messages to a sendmsg');
  t.ok(types.every((x) => x === 28), 'all RTM_NEWNEIGH');
  for (const f of flags) {
    t.ok(f.slice(0, -1).every((x) => x === (0x1 | 0x400 | 0x100)), 'REQUEST|CREATE|REPLACE, no ACK');
    t.equal(f.at(-1), 0x1 | 0x4 | 0x400 | 0x100, 'the last one: ACK too');
  }
  t.equal(k.nl.listenerCount('message'), 0, 'listeners removed');
});

t.test('a refused request fails alone, with its errno, found by its position', async (t) => {
  const k = kernelLike({ refuse: (i) => (i === 5 || i === BATCH + 1 ? -19 : i === BATCH - 1 ? -22 : 0) });
  const failed = await sendNeighRequests(k.s, Array.from({ length: BATCH + 4 }, (_, i) => req(i)), 1000);
  t.same([...failed.keys()].sort((a, b) => a - b), [5, BATCH - 1, BATCH + 1]);
  t.ok(failed.get(5) instanceof KernelError);
  t.equal(failed.get(5)?.errno, 'ENODEV');
  t.equal(failed.get(BATCH - 1)?.errno, 'EINVAL', 'the last of a batch: its answer is the error');
  t.equal(failed.get(BATCH + 1)?.message, 'Request rejected: ENODEV', 'worded as the package words it');
});

t.test('no answer: the timeout rejects; a failed send rejects', async (t) => {
  await t.rejects(sendNeighRequests(kernelLike({ answer: false }).s, [req(1)], 20), { message: 'Timeout has been reached' });
  const k = kernelLike({ sendError: Object.assign(new Error('sendmsg ENOBUFS'), { code: 'ENOBUFS' }) });
  await t.rejects(sendNeighRequests(k.s, [req(1)], 1000), { code: 'ENOBUFS' });
  t.equal(k.nl.listenerCount('message'), 0, 'listeners removed');
  const closed = kernelLike({ answer: false });
  const p = sendNeighRequests(closed.s, [req(1)], 1000);
  closed.nl.emit('close');
  await t.rejects(p, { message: /closed/ });
});

t.test('nothing to send: no sendmsg', async (t) => {
  const k = kernelLike();
  t.equal((await sendNeighRequests(k.s, [], 1000)).size, 0);
  t.equal(k.sent.length, 0);
});
