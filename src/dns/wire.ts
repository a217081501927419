/**
 * DNS wire helpers of the resolver: header peeking, error replies built from
 * the raw query (so they never depend on a full decode) and answer packets
 * with truncation. Pure; nothing here throws on any input except
 * `buildAnswer`, whose callers catch.
 */
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, OptAnswer } from 'dns-packet';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

const QR = 0x8000;
const AA = 0x0400;
const TC = 0x0200;
const RD = 0x0100;
const RA = 0x0080;
const OPCODE_MASK = 0x7800;

/** Classic DNS-over-UDP limit without EDNS. */
export const UDP_MIN = 512;
/** Largest UDP answer we send and advertise (DNS flag day 2020 value). */
export const UDP_MAX = 1232;
/** DNS-over-TCP frame limit. */
export const TCP_MAX = 65535;

export interface Header {
  id: number;
  flags: number;
  qr: boolean;
  opcode: number;
  qdcount: number;
}

/** The fixed 12-byte header, or undefined when the packet is shorter. */
export const peekHeader = (buf: Buffer): Header | undefined => {
  if (buf.length < 12) return undefined;
  const flags = buf.readUInt16BE(2);
  return { id: buf.readUInt16BE(0), flags, qr: (flags & QR) !== 0, opcode: (flags & OPCODE_MASK) >> 11, qdcount: buf.readUInt16BE(4) };
};

/** End offset of the wire name starting at `off` (not following pointers), or undefined. */
const skipName = (buf: Buffer, off: number): number | undefined => {
  let o = off;
  for (let labels = 0; labels < 128; labels++) {
    const len = buf[o];
    if (len === undefined) return undefined;
    if (len === 0) return o + 1;
    if ((len & 0xc0) === 0xc0) return o + 2 <= buf.length ? o + 2 : undefined;
    if ((len & 0xc0) !== 0) return undefined;
    o += 1 + len;
  }
  return undefined;
};

/** Bytes of the first question of a query, if it has exactly one that is well formed. */
const rawQuestion = (query: Buffer): Buffer | undefined => {
  const h = peekHeader(query);
  if (h === undefined || h.qdcount !== 1) return undefined;
  const end = skipName(query, 12);
  if (end === undefined || end + 4 > query.length) return undefined;
  return query.subarray(12, end + 4);
};

/**
 * A reply with `rcode` to a query whose header is readable: same id and
 * opcode, RD copied, RA set, the question echoed when it is readable.
 * undefined when the packet has no full header or is itself a response
 * (never answer responses: that is how reflection loops start).
 */
export const errorReply = (query: Buffer, rcode: number): Buffer | undefined => {
  const h = peekHeader(query);
  if (h === undefined || h.qr) return undefined;
  const question = rcode === RCODE.FORMERR ? undefined : rawQuestion(query);
  const out = Buffer.alloc(12 + (question?.length ?? 0));
  out.writeUInt16BE(h.id, 0);
  out.writeUInt16BE(QR | (h.flags & (OPCODE_MASK | RD)) | RA | (rcode & 0xf), 2);
  if (question) {
    out.writeUInt16BE(1, 4);
    question.copy(out, 12);
  }
  return out;
};

const optOf = (query: DecodedPacket): OptAnswer | undefined =>
  query.additionals?.find((a): a is OptAnswer => a.type === 'OPT');

/** Largest UDP reply the querier accepts: 512, or its EDNS size capped at UDP_MAX. */
export const udpLimit = (query: DecodedPacket): number => {
  const opt = optOf(query);
  if (opt === undefined) return UDP_MIN;
  return Math.min(Math.max(UDP_MIN, opt.udpPayloadSize), UDP_MAX);
};

/**
 * Our authoritative reply (NOERROR) with `answers`. If it would exceed
 * `limit` bytes, the answers are dropped and TC is set, so the querier
 * retries over TCP. An EDNS query gets an OPT record back.
 */
export const buildAnswer = (query: DecodedPacket, answers: Answer[], limit: number): Buffer => {
  const opt = optOf(query);
  const additionals: Answer[] = opt
    ? [{ type: 'OPT', name: '.', udpPayloadSize: UDP_MAX, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }]
    : [];
  const flags = AA | RA | ((query.flags ?? 0) & RD) | RCODE.NOERROR;
  const base = { type: 'response' as const, id: query.id ?? 0, questions: query.questions ?? [], additionals };
  const full = dnsPacket.encode({ ...base, flags, answers });
  if (full.length <= limit) return full;
  return dnsPacket.encode({ ...base, flags: flags | TC, answers: [] });
};

/** Whether `reply` is a response to `query` (same id, QR set, full header). */
export const isReplyTo = (query: Buffer, reply: Buffer): boolean => {
  const q = peekHeader(query);
  const r = peekHeader(reply);
  return q !== undefined && r !== undefined && r.qr && r.id === q.id;
};
