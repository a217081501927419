/**
 * IPv4/IPv6 address arithmetic on bigints. Pure; used by IPAM and the driver.
 */
import { isIP } from 'node:net';

export type Family = 4 | 6;
export interface Ip {
  family: Family;
  value: bigint;
}
export interface Cidr {
  family: Family;
  /** Network address (host bits cleared). */
  network: bigint;
  prefix: number;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };
export const bitsOf = (f: Family): number => BITS[f];

/** An IPv4/IPv6 literal (no zone id, no prefix), or undefined. */
export const parseIp = (text: string): Ip | undefined => {
  if (text.includes('%')) return undefined;
  const family = isIP(text);
  if (family === 4) {
    const value = text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
    return { family: 4, value };
  }
  if (family === 6) {
    if (text.includes('.')) {
      // IPv4-suffixed form (::ffff:1.2.3.4): convert the tail to two groups.
      const idx = text.lastIndexOf(':');
      const v4 = parseIp(text.slice(idx + 1));
      if (!v4) return undefined;
      const hi = (v4.value >> 16n).toString(16);
      const lo = (v4.value & 0xffffn).toString(16);
      return parseIp(`${text.slice(0, idx + 1)}${hi}:${lo}`);
    }
    const [head = '', tail] = text.split('::');
    const headGroups = head === '' ? [] : head.split(':');
    const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
    const missing = 8 - headGroups.length - tailGroups.length;
    const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(missing).fill('0'), ...tailGroups];
    const value = groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
    return { family: 6, value };
  }
  return undefined;
};

export const formatIp = (ip: Ip): string => {
  if (ip.family === 4) {
    return [24n, 16n, 8n, 0n].map((s) => String((ip.value >> s) & 0xffn)).join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn));
  // Longest run of zero groups (length ≥ 2) collapses to "::" (RFC 5952).
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLen).join(':');
  return `${left}::${right}`;
};

const maskOf = (family: Family, prefix: number): bigint => {
  const bits = BigInt(bitsOf(family));
  return ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(prefix))) - 1n);
};

/** Parse "a.b.c.d/len"; host bits are cleared. Undefined if malformed. */
export const parseCidr = (text: string): Cidr | undefined => {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text.trim());
  if (!m) return undefined;
  const ip = parseIp(m[1] ?? '');
  const prefix = Number(m[2]);
  if (!ip || prefix > bitsOf(ip.family)) return undefined;
  return { family: ip.family, network: ip.value & maskOf(ip.family, prefix), prefix };
};

/** Parse "a.b.c.d/len" keeping the host part: the address and its prefix. */
export const parseIpWithPrefix = (text: string): { ip: Ip; prefix: number } | undefined => {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text.trim());
  if (!m) return undefined;
  const ip = parseIp(m[1] ?? '');
  const prefix = Number(m[2]);
  if (!ip || prefix > bitsOf(ip.family)) return undefined;
  return { ip, prefix };
};

export const formatCidr = (c: Cidr): string => `${formatIp({ family: c.family, value: c.network })}/${c.prefix}`;

export const size = (c: Cidr): bigint => 1n << BigInt(bitsOf(c.family) - c.prefix);
export const lastOf = (c: Cidr): bigint => c.network + size(c) - 1n;

export const contains = (c: Cidr, ip: Ip): boolean =>
  c.family === ip.family && ip.value >= c.network && ip.value <= lastOf(c);

export const overlaps = (a: Cidr, b: Cidr): boolean =>
  a.family === b.family && a.network <= lastOf(b) && b.network <= lastOf(a);

export const containsCidr = (outer: Cidr, inner: Cidr): boolean =>
  outer.family === inner.family && inner.network >= outer.network && lastOf(inner) <= lastOf(outer);

/**
 * Addresses that may be handed out in a pool: IPv4 excludes the network and
 * broadcast addresses (except /31 and /32), IPv6 excludes the subnet-router
 * anycast address (the network address) except /127 and /128.
 */
export const usableRange = (c: Cidr): { first: bigint; last: bigint } => {
  const hostBits = bitsOf(c.family) - c.prefix;
  if (hostBits <= 1) return { first: c.network, last: lastOf(c) };
  if (c.family === 4) return { first: c.network + 1n, last: lastOf(c) - 1n };
  return { first: c.network + 1n, last: lastOf(c) };
};

/** "10.20.0.5" + 24 → "10.20.0.5/24". */
export const withPrefix = (ip: Ip, prefix: number): string => `${formatIp(ip)}/${prefix}`;

/** Canonical text of an IP (e.g. IPv6 compressed), or undefined if invalid. */
export const canonicalIp = (text: string): string | undefined => {
  // Node's isIP accepts only plain dotted decimal (no leading zeros): already canonical.
  if (isIP(text) === 4) return text;
  const ip = parseIp(text);
  return ip ? formatIp(ip) : undefined;
};
