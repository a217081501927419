/**
 * Underlay discovery: which interface and address VXLAN traffic leaves
 * through, from `--advertise` (an IP, an interface name, or nothing: the
 * interface of the default route). Also the address dump it reads, which
 * the link listing shares.
 */
import type { rt } from 'netlink';
import { TsoverlayError } from '../../errors.js';
import { bytesToIp, canonicalIp } from './addr.js';
import { isValidIfname } from './ifname.js';
import type { Exec } from './lane.js';
import type { LinkQueries } from './link-queries.js';
import type { KernelLink } from './link-message.js';
import { AF_INET, AF_INET6, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN } from './linux.js';

/** The underlay as found (the port's `Underlay`). */
export interface UnderlayFound {
  ifname: string;
  ifindex: number;
  address: string;
  family: 4 | 6;
  mtu: number;
}

export interface KernelAddress {
  index: number;
  family: 4 | 6;
  address: string;
  global: boolean;
}

const parseAddress = (m: rt.AddressMessage): KernelAddress | undefined => {
  // IFA_LOCAL is the local address; IFA_ADDRESS is the peer on point-to-point links.
  const bytes = m.attrs.local ?? m.attrs.address;
  if (!bytes || (m.data.family !== AF_INET && m.data.family !== AF_INET6)) return undefined;
  const flags = m.attrs.flags ?? m.data.flags ?? {};
  return {
    index: m.data.index ?? 0,
    family: m.data.family === AF_INET ? 4 : 6,
    address: bytesToIp(bytes),
    global: (m.data.scope ?? 0) === RT_SCOPE_UNIVERSE && !flags.dadfailed,
  };
};

/** Every address, or those of one family (AF_INET/AF_INET6: the kernel dumps only that family). */
export const dumpAddresses = async (exec: Exec, family?: number): Promise<KernelAddress[]> => {
  const msgs = await exec('dump', 'addresses', (s, o) => s.getAddresses(family === undefined ? {} : { family }, {}, o));
  const want = family === undefined ? undefined : family === AF_INET ? 4 : 6;
  return msgs.map(parseAddress).filter((a): a is KernelAddress => a !== undefined && (want === undefined || a.family === want));
};

const isUnicastRoute = (type: unknown): boolean => type === 'UNICAST' || type === 1;

/** Output interface of a route: RTA_OIF, else the first hop of RTA_MULTIPATH (struct rtnexthop). */
const routeOif = (r: rt.RouteMessage): number | undefined => {
  if (r.attrs.oif) return r.attrs.oif;
  const mp = r.attrs.multipath;
  return mp && mp.length >= 8 ? mp.readInt32LE(4) : undefined;
};

/** Default routes of the main table for one family, lowest metric first. */
const defaultRoutes = async (exec: Exec, family: number): Promise<rt.RouteMessage[]> => {
  const msgs = await exec('dump', `IPv${family === AF_INET ? 4 : 6} routes`, (s, o) => s.getRoutes({ family }, {}, o));
  return msgs
    .filter((r) => (r.attrs.table ?? r.data.table) === RT_TABLE_MAIN && r.data.dstLen === 0 && isUnicastRoute(r.data.type))
    .sort((a, b) => (a.attrs.priority ?? 0) - (b.attrs.priority ?? 0));
};

const invalid = (message: string): TsoverlayError => new TsoverlayError('INVALID_OPTION', message);

/**
 * Resolve `--advertise`. Reads only what it needs: the default routes, the
 * addresses of one family and the one link they point at (a host with
 * thousands of container links would otherwise be dumped whole, twice, at
 * every start).
 */
export const resolveUnderlay = async (exec: Exec, links: LinkQueries, advertise: string | undefined): Promise<UnderlayFound> => {
  const addrs = new Map<4 | 6, Promise<KernelAddress[]>>();
  const addressesOf = (family: 4 | 6): Promise<KernelAddress[]> => {
    let p = addrs.get(family);
    if (!p) addrs.set(family, (p = dumpAddresses(exec, family === 4 ? AF_INET : AF_INET6)));
    return p;
  };
  const underlay = (link: KernelLink, a: KernelAddress): UnderlayFound => ({
    ifname: link.name,
    ifindex: link.index,
    address: a.address,
    family: a.family,
    mtu: link.mtu,
  });
  const globalOn = async (index: number, family: 4 | 6): Promise<KernelAddress | undefined> =>
    (await addressesOf(family)).find((a) => a.index === index && a.global);

  if (advertise === undefined) {
    let routeWithoutAddress: string | undefined;
    for (const [family, af] of [
      [4, AF_INET],
      [6, AF_INET6],
    ] as const) {
      for (const r of await defaultRoutes(exec, af)) {
        const oif = routeOif(r);
        const link = oif === undefined ? undefined : await links.findLinkByIndex(oif);
        if (!link) continue;
        const src = r.attrs.prefsrc ? bytesToIp(r.attrs.prefsrc) : undefined;
        const a = (await addressesOf(family)).find((x) => x.index === link.index && x.address === src) ?? (await globalOn(link.index, family));
        if (a) return underlay(link, a);
        routeWithoutAddress ??= `${link.name} (IPv${family})`;
      }
    }
    if (routeWithoutAddress) {
      throw invalid(
        `the default route leaves through ${routeWithoutAddress}, which has no global address; set --advertise to an IP or interface name`,
      );
    }
    throw invalid('no default route on this host; set --advertise to an IP or interface name');
  }

  const ip = canonicalIp(advertise);
  if (ip) {
    const a = (await addressesOf(ip.family)).find((x) => x.address === ip.address);
    const link = a && (await links.findLinkByIndex(a.index));
    if (!a || !link) throw invalid(`--advertise ${advertise}: no interface on this host holds that address`);
    return underlay(link, a);
  }
  if (!isValidIfname(advertise)) throw invalid(`--advertise ${advertise}: not an IP address or interface name`);
  const link = await links.findLink(advertise);
  if (!link) throw invalid(`--advertise ${advertise}: no such interface on this host, and not an IP address`);
  const a = (await globalOn(link.index, 4)) ?? (await globalOn(link.index, 6));
  if (!a) throw invalid(`--advertise ${advertise}: the interface has no global IPv4 or IPv6 address`);
  return underlay(link, a);
};
