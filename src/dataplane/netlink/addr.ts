/**
 * IP and MAC text <-> bytes, shared by the netlink adapter and the fake so
 * both compare and report addresses in one canonical form: dotted IPv4,
 * RFC 5952 IPv6 (lower case, longest zero run compressed), lower-case
 * colon-separated MAC. Address arithmetic itself lives in ../net/ip.ts.
 */
import { isIPv4 } from 'node:net';
import { formatIp, parseIp } from '../../net/ip.js';

/**
 * The octets of a dotted IPv4 literal, without parseIp's bigint round trip:
 * every forwarding entry is checked and written through here (~20,000 calls
 * when a restart at 5,000 endpoints writes its entries back).
 */
const v4Octets = (text: string): number[] | undefined => (isIPv4(text) ? text.split('.').map(Number) : undefined);

/** 4 or 16 bytes for a valid IPv4/IPv6 literal (no zone, no prefix), else undefined. */
export const ipToBytes = (text: string): Buffer | undefined => {
  const v4 = v4Octets(text);
  if (v4) return Buffer.from(v4);
  const ip = parseIp(text);
  if (!ip) return undefined;
  const out = Buffer.alloc(ip.family === 4 ? 4 : 16);
  let v = ip.value;
  for (let i = out.length - 1; i >= 0; i--, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
};

/** Canonical text of 4 or 16 address bytes. */
export const bytesToIp = (bytes: Uint8Array): string => {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) throw new Error(`not an IP address: ${bytes.length} bytes`);
  const value = Array.from(bytes).reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
  return formatIp({ family: 6, value });
};

/** Canonical form and family of an IP literal, or undefined if it is not one. */
export const canonicalIp = (text: string): { address: string; family: 4 | 6 } | undefined => {
  // Node's isIPv4 accepts only plain dotted decimal (no leading zeros): already canonical.
  if (isIPv4(text)) return { address: text, family: 4 };
  const b = ipToBytes(text);
  return b ? { address: bytesToIp(b), family: b.length === 4 ? 4 : 6 } : undefined;
};

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** Six bytes of a colon-separated MAC, or undefined. */
export const macToBytes = (text: string): Buffer | undefined =>
  MAC_RE.test(text) ? Buffer.from(text.replace(/:/g, ''), 'hex') : undefined;

/** Lower-case colon form of link-layer address bytes. */
export const bytesToMac = (bytes: Uint8Array): string =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');

/** A MAC the kernel accepts for a device: not multicast, not all zeros. */
export const isUnicastMac = (bytes: Uint8Array): boolean =>
  bytes.length === 6 && ((bytes[0] ?? 0) & 1) === 0 && bytes.some((b) => b !== 0);

/** An IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast address, as 4 or 16 bytes. */
export const isMulticastIp = (bytes: Uint8Array): boolean =>
  bytes.length === 4 ? ((bytes[0] ?? 0) & 0xf0) === 0xe0 : bytes.length === 16 && bytes[0] === 0xff;

/** True if every byte is zero (the flood MAC, an unset address). */
export const isAllZero = (b: Uint8Array): boolean => b.every((x) => x === 0);
