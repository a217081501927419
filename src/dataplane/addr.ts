/**
 * IP and MAC text <-> bytes, shared by the netlink adapter and the fake so
 * both compare and report addresses in one canonical form: dotted IPv4,
 * RFC 5952 IPv6 (lower case, longest zero run compressed), lower-case
 * colon-separated MAC.
 */

/** 4 or 16 bytes for a valid IPv4/IPv6 literal (no zone, no prefix), else undefined. */
export const ipToBytes = (text: string): Buffer | undefined =>
  text.includes(':') ? ipv6ToBytes(text) : ipv4ToBytes(text);

const ipv4ToBytes = (text: string): Buffer | undefined => {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = Buffer.alloc(4);
  for (const [i, p] of parts.entries()) {
    // Decimal only, no leading zeros (inet_aton would read them as octal).
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
};

const ipv6ToBytes = (text: string): Buffer | undefined => {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  // An embedded IPv4 part may only end the whole address.
  const groups = (s: string, last: boolean): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    const parts = s.split(':');
    for (const [i, p] of parts.entries()) {
      if (p.includes('.')) {
        // Embedded IPv4 tail, e.g. ::ffff:192.0.2.1
        const v4 = last && i === parts.length - 1 ? ipv4ToBytes(p) : undefined;
        if (!v4) return undefined;
        out.push(v4.readUInt16BE(0), v4.readUInt16BE(2));
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        out.push(Number.parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0] ?? '', halves.length === 1);
  const tail = halves.length === 2 ? groups(halves[1] ?? '', true) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
};

/** Canonical text of 4 or 16 address bytes. */
export const bytesToIp = (bytes: Uint8Array): string => {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) throw new Error(`not an IP address: ${bytes.length} bytes`);
  const buf = Buffer.from(bytes);
  const g = Array.from({ length: 8 }, (_, i) => buf.readUInt16BE(i * 2));
  // RFC 5952 §4.2: compress the first longest run of two or more zero groups.
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [bestAt, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(g);
  return `${hex(g.slice(0, bestAt))}::${hex(g.slice(bestAt + bestLen))}`;
};

/** Canonical form and family of an IP literal, or undefined if it is not one. */
export const canonicalIp = (text: string): { address: string; family: 4 | 6 } | undefined => {
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
