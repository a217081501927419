/**
 * Upstream resolvers: where names that are not ours get forwarded.
 * Pure parsing only; the caller reads /etc/resolv.conf.
 */
import { isIP } from 'node:net';
import { canonicalIp } from '../net/ip.js';

/** Docker's embedded DNS: forwarding to it from the host would loop or fail. */
export const DOCKER_EMBEDDED_DNS = '127.0.0.11';

export interface Upstream {
  /** Bare address (an IPv6 zone id such as `%eth0` is kept). */
  host: string;
  port: number;
  family: 4 | 6;
}

const addressFamily = (text: string): 4 | 6 | undefined => {
  const bare = text.split('%')[0] ?? '';
  const f = isIP(bare);
  if (f === 4 && !text.includes('%')) return 4;
  if (f === 6) return 6;
  return undefined;
};

const sameAddress = (a: string, b: string): boolean => a === b || (canonicalIp(a) ?? a) === (canonicalIp(b) ?? b);

/**
 * Nameservers of resolv.conf text, in order, deduplicated: `nameserver ADDR`
 * lines with an IPv4/IPv6 address (comments `#`/`;`, other options and
 * invalid addresses ignored), without 127.0.0.11 and without `exclude`
 * (our own listening address, so we never forward to ourselves).
 */
export const parseResolvConf = (text: string, exclude: readonly string[] = []): string[] => {
  const skip = [DOCKER_EMBEDDED_DNS, ...exclude];
  const out: string[] = [];
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.replace(/[#;].*$/, '').trim();
    const [keyword, addr, ...rest] = line.split(/\s+/);
    if (keyword !== 'nameserver' || addr === undefined || rest.length > 0) continue;
    if (addressFamily(addr) === undefined) continue;
    if (skip.some((s) => sameAddress(s, addr)) || out.some((s) => sameAddress(s, addr))) continue;
    out.push(addr);
  }
  return out;
};

/**
 * "ip", "ip:port" (IPv4), "ipv6", "[ipv6]" or "[ipv6]:port" → Upstream;
 * undefined when not an address or the port is not 1–65535.
 */
export const parseUpstream = (text: string): Upstream | undefined => {
  const s = text.trim();
  let host = s;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (bracketed) {
    host = bracketed[1] ?? '';
    portText = bracketed[2];
    if (addressFamily(host) !== 6) return undefined;
  } else {
    const v4port = /^([0-9.]+):(\d+)$/.exec(s);
    if (v4port) {
      host = v4port[1] ?? '';
      portText = v4port[2];
    }
  }
  const family = addressFamily(host);
  if (family === undefined) return undefined;
  const port = portText === undefined ? 53 : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host, port, family };
};
