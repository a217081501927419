/**
 * RTM_NEWNEIGH requests (FDB and neighbour entries) written by hand and sent
 * many to one `sendmsg`, on a socket of the `netlink` package.
 *
 * Why: going through the package, every entry is its own message object,
 * attribute stream, `sendmsg`, ACK datagram (two `recvmsg`), parse and
 * promise. At 6,600 entries (a restart at 5,000 endpoints) that was most of
 * the restart's entry phase, and the garbage it made a good part of the rest.
 *
 * How: the kernel runs every message of one `sendmsg` in order
 * (`netlink_rcv_skb`) and answers only those that fail or ask for an ACK
 * (NLM_F_ACK). So a batch asks for one ACK, on its last message: once that
 * answer is in, every message of the batch has run, and the only other
 * answers are the errors of the ones that failed, each carrying its
 * sequence number. Answers to sequence numbers the package is not waiting
 * for reach us as its socket's `message` events.
 *
 * A batch is at most BATCH messages (~60 bytes each): far below the
 * socket's send limit, and even if every one fails, their error answers
 * (each copies the request) fit the receive buffer.
 */
import type { NetlinkMessage, RtNetlinkSocket } from 'netlink';
import { getSystemErrorName } from 'node:util';
import { KernelError } from './kernel-error.js';
import { NDA_DST, NDA_LLADDR, NLMSG_ERROR, NLM_F_ACK, NLM_F_REQUEST, NUD_PERMANENT, RTM_NEWNEIGH } from './linux.js';

/** Messages per `sendmsg`. */
export const BATCH = 128;

const HEADER = 16; // struct nlmsghdr
const NDMSG = 12; // struct ndmsg

// Netlink is host byte order; like the rest of the adapter this writes
// little-endian (every platform Node runs Docker on).
const u16 = (b: Buffer, v: number, at: number): number => b.writeUInt16LE(v, at);
const u32 = (b: Buffer, v: number, at: number): number => b.writeUInt32LE(v, at);
const s32 = (b: Buffer, v: number, at: number): number => b.writeInt32LE(v, at);
const readS32 = (b: Buffer, at: number): number => b.readInt32LE(at);

const align4 = (n: number): number => (n + 3) & ~3;

/** One RTM_NEWNEIGH: its header flags (besides REQUEST/ACK) and its body. */
export interface NeighRequest {
  /** NLM_F_CREATE and NLM_F_REPLACE or NLM_F_APPEND. */
  flags: number;
  /** struct ndmsg and the NDA_DST, NDA_LLADDR attributes. */
  body: Buffer;
}

/**
 * The body of an RTM_NEWNEIGH adding a permanent entry: `family` AF_INET or
 * AF_INET6 for a neighbour, AF_BRIDGE with NTF_SELF in `ntFlags` for an FDB
 * entry of the device itself.
 */
export const neighBody = (family: number, ifindex: number, ntFlags: number, dst: Buffer, lladdr: Buffer): Buffer => {
  const b = Buffer.alloc(NDMSG + align4(4 + dst.length) + align4(4 + lladdr.length));
  b.writeUInt8(family, 0); // ndm_family; pad bytes stay zero
  s32(b, ifindex, 4);
  u16(b, NUD_PERMANENT, 8); // ndm_state
  b.writeUInt8(ntFlags, 10); // ndm_flags; ndm_type 0
  let at = NDMSG;
  for (const [type, value] of [[NDA_DST, dst], [NDA_LLADDR, lladdr]] as const) {
    u16(b, 4 + value.length, at);
    u16(b, type, at + 2);
    value.copy(b, at + 4);
    at += align4(4 + value.length);
  }
  return b;
};

/** The messages of one batch in one buffer; only the last asks for an ACK. */
const frame = (requests: readonly NeighRequest[], seqs: readonly number[]): Buffer => {
  const out = Buffer.alloc(requests.reduce((n, r) => n + HEADER + r.body.length, 0));
  let at = 0;
  requests.forEach((r, i) => {
    const len = HEADER + r.body.length;
    u32(out, len, at);
    u16(out, RTM_NEWNEIGH, at + 4);
    u16(out, NLM_F_REQUEST | r.flags | (i === requests.length - 1 ? NLM_F_ACK : 0), at + 6);
    u32(out, seqs[i] ?? 0, at + 8);
    // nlmsg_pid 0: the kernel answers the sending socket
    r.body.copy(out, at + HEADER);
    at += len;
  });
  return out;
};

const rejected = (errno: number): KernelError => {
  let name = String(errno);
  try {
    name = getSystemErrorName(errno);
  } catch {
    // not a known errno: keep the number
  }
  return new KernelError(name, `Request rejected: ${name}`);
};

/**
 * Send `requests` in batches of BATCH, one batch at a time, on `s` (the
 * caller owns the socket for the duration, as a job of its lane). Resolves
 * with the kernel's error per failed request, by index in `requests`.
 * Rejects if the socket fails, or with "Timeout has been reached" when a
 * batch's ACK does not come within `timeoutMs`; then it is unknown what the
 * batch did, and the socket may still receive its answers.
 */
export async function sendNeighRequests(
  s: RtNetlinkSocket,
  requests: readonly NeighRequest[],
  timeoutMs: number,
): Promise<Map<number, KernelError>> {
  const failed = new Map<number, KernelError>();
  const nl = s.socket;
  for (let at = 0; at < requests.length; at += BATCH) {
    const batch = requests.slice(at, at + BATCH);
    const seqs = batch.map(() => nl.generateSeq());
    const index = new Map(seqs.map((seq, i) => [seq, at + i]));
    const last = seqs[seqs.length - 1];
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error): void => {
        clearTimeout(timer);
        nl.off('message', onMessage);
        nl.off('error', done);
        nl.off('close', onClose);
        if (error) reject(error);
        else resolve();
      };
      const onMessage = (msgs: NetlinkMessage[]): void => {
        for (const m of msgs) {
          const i = index.get(m.seq);
          if (i === undefined || m.type !== NLMSG_ERROR || m.data.length < 4) continue;
          const errno = readS32(m.data, 0);
          if (errno !== 0) failed.set(i, rejected(errno));
          if (m.seq === last) done();
        }
      };
      const onClose = (): void => done(new Error('the netlink socket was closed'));
      const timer = setTimeout(() => done(new Error('Timeout has been reached')), timeoutMs);
      nl.on('message', onMessage);
      nl.on('error', done);
      nl.on('close', onClose);
      nl.socket.send(frame(batch, seqs), {}, (error) => {
        if (error) done(error);
      });
    });
  }
  return failed;
}
