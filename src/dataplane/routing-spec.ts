/**
 * Validation and ordering rules of the resolver routing calls (bridge
 * addresses, the source rule, table routes), shared by `NetlinkDataplane`
 * (netlink-routing.ts) and `FakeDataplane` so both accept, reject and sort
 * alike.
 */
import { TsoverlayError } from '../errors.js';
import { formatCidr, parseCidr, parseIpWithPrefix } from '../net/ip.js';
import { canonicalIp, ipToBytes, isMulticastIp } from './netlink/addr.js';
import type { SourceRule, TableRoute } from './dataplane.js';
import { isOwnedName, OWNED_PREFIX } from './names.js';

/** Tables the kernel owns: unspec (0), default (253), main (254), local (255). */
export const RESERVED_TABLES: ReadonlySet<number> = new Set([0, 253, 254, 255]);
/** Priority of the kernel's "from all lookup main" rule: ours must come first. */
export const MAIN_RULE_PRIORITY = 32766;
const MAX_U32 = 0xffffffff;

const invalid = (message: string): TsoverlayError => new TsoverlayError('INVALID_OPTION', message);

export interface HostAddress {
  address: string;
  family: 4 | 6;
}

/** A unicast address this host can hold (not multicast, unspecified or broadcast), canonical. */
export const checkHostAddress = (what: string, text: string): HostAddress => {
  const ip = canonicalIp(text);
  const bytes = ip && ipToBytes(ip.address);
  if (!ip || !bytes || isMulticastIp(bytes) || bytes.every((b) => b === 0) || (bytes.length === 4 && bytes.every((b) => b === 0xff))) {
    throw invalid(`${what} "${text}" is not a unicast IP address`);
  }
  return ip;
};

/** The device of a routing call must be one of ours. */
export const checkRoutingDevice = (what: string, name: string): void => {
  if (!isOwnedName(name)) {
    throw invalid(`${what} "${name}" must start with "${OWNED_PREFIX}" and be a valid device name of at most 15 bytes`);
  }
};

export const checkTable = (table: number): void => {
  if (!Number.isInteger(table) || table < 1 || table > MAX_U32) throw invalid(`routing table ${table} is not an integer in 1..${MAX_U32}`);
  if (RESERVED_TABLES.has(table)) throw invalid(`routing table ${table} is one of the kernel's (default 253, main 254, local 255); use a table of its own`);
};

export const checkRulePriority = (priority: number): void => {
  if (!Number.isInteger(priority) || priority < 1 || priority >= MAIN_RULE_PRIORITY) {
    throw invalid(`rule priority ${priority} must be an integer in 1..${MAIN_RULE_PRIORITY - 1}, before the main table's rule`);
  }
};

/** Validate a table route; returns it canonical, with its family and prefix length. */
export const checkTableRoute = (
  table: number,
  route: { dst: string; dev: string; src?: string | undefined },
): TableRoute & { family: 4 | 6; prefix: number; network: string } => {
  checkTable(table);
  checkRoutingDevice('route device', route.dev);
  const withHost = parseIpWithPrefix(route.dst);
  const cidr = parseCidr(route.dst);
  if (!withHost || !cidr) throw invalid(`route dst "${route.dst}" is not a CIDR (address/prefix length)`);
  const dst = formatCidr(cidr);
  if (withHost.ip.value !== cidr.network) throw invalid(`route dst "${route.dst}" has host bits set; did you mean ${dst}?`);
  const out: TableRoute & { family: 4 | 6; prefix: number; network: string } = {
    dst,
    dev: route.dev,
    family: cidr.family,
    prefix: cidr.prefix,
    network: dst.slice(0, dst.indexOf('/')),
  };
  if (route.src !== undefined) {
    const src = checkHostAddress('route src', route.src);
    if (src.family !== cidr.family) throw invalid(`route src ${src.address} is IPv${src.family} but dst ${dst} is IPv${cidr.family}`);
    out.src = src.address;
  }
  return out;
};

/** Sort key of an IP: IPv4 before IPv6, then numerically. */
const ipKey = (ip: string): string => {
  const b = ipToBytes(ip);
  return b ? `${b.length === 4 ? 4 : 6}${b.toString('hex')}` : `9${ip}`;
};

const byKey = <T>(items: readonly T[], key: (x: T) => string): T[] =>
  items
    .map((x) => ({ x, k: key(x) }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
    .map((e) => e.x);

/** The order of `ObservedLink.addresses` (both implementations). */
export const sortAddresses = (addresses: readonly string[]): string[] => byKey(addresses, ipKey);

/** The order `listTableRoutes` returns routes in: IPv4 before IPv6, then dst (numerically, then prefix), then dev. */
export const sortTableRoutes = (routes: readonly TableRoute[]): TableRoute[] =>
  byKey(routes, (r) => {
    const [ip = '', len = '0'] = r.dst.split('/');
    return `${ipKey(ip)}/${len.padStart(3, '0')} ${r.dev}`;
  });

/** The order `listSourceRules` returns rules in: priority, then IPv4 before IPv6, then source. */
export const sortSourceRules = (rules: readonly SourceRule[]): SourceRule[] =>
  byKey(rules, (r) => `${String(r.priority).padStart(10, '0')} ${ipKey(r.source)}`);

/** IPv6 link-local (fe80::/10): the kernel adds one to every device that comes up; not ours to report. */
export const isIpv6LinkLocal = (bytes: Uint8Array): boolean => bytes.length === 16 && bytes[0] === 0xfe && ((bytes[1] ?? 0) & 0xc0) === 0x80;
