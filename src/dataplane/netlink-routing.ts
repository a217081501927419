/**
 * The resolver's kernel setup, over rtnetlink: the routing concern of
 * `NetlinkDataplane` (every request goes through the adapter's request
 * queue, netlink/lane.ts).
 *
 * How it works
 * Every node runs a DNS resolver on a link-local address R (default
 * 169.254.53.53). Containers get an on-link route to R/32 through their
 * tsoverlay interface, so they ARP for R on the network's bridge and send the
 * query from their own overlay address. On the node:
 * - R/32 is an address of every tsoverlay bridge (`ensureBridgeAddress`). The
 *   same /32 on several devices is fine in Linux: each gets a `local` route
 *   in the local table, so the host answers ARP for R on each bridge and
 *   accepts the query. A /32 gets no subnet route in the main table.
 *   Scope *link*, not host: with `arp_announce=2` the kernel picks the source
 *   of its own ARP requests (for the container, when the reply goes out) with
 *   `inet_select_addr(dev, dst, RT_SCOPE_LINK)`, which skips host-scope
 *   addresses; it would then use some global address of the node (the
 *   underlay's), which the container does not expect on that link. A
 *   link-scope R is also never picked as the source of traffic to the
 *   outside (universe scope). IPv6: scope follows the address; added with
 *   `nodad` (a tentative address cannot be a route's `src`) and
 *   `noprefixroute` (no /128 route in the main table).
 * - Replies from R must leave through the bridge the query came from, but the
 *   host has no route to container subnets, and must not get one in the main
 *   table (the host would then route between networks). Policy routing: a
 *   rule "from R lookup T" at priority P (`ensureSourceRule`, P before the
 *   main rule 32766) and in table T one route per network subnet,
 *   `<subnet> dev tsbr-<vni> scope link src R` (`ensureTableRoute`). Only
 *   packets from R see table T; anything else (and R to a destination not in
 *   T) falls through to the main table as before.
 * - rp_filter: the reverse-path check of a query (source = container, dst =
 *   R) looks up the container address *with saddr = R*, so the rule matches
 *   and table T's route through the bridge satisfies even strict mode (1).
 *   The same lookup makes the host's ARP reply for R pass. The resolver
 *   must send from R (bind to R, or IP_PKTINFO): an unbound socket's reply
 *   would be routed by the main table.
 *
 * Netlink notes
 * - Table ids above 255 do not fit the u8 `rtm_table` / `fib_rule_hdr.table`
 *   (the package's encoder throws a RangeError for them): send them as
 *   RTA_TABLE / FRA_TABLE (u32) with 0 in the header, as iproute2 does. The
 *   kernel reports them with 252 (RT_TABLE_COMPAT) in the header and the real
 *   id in the attribute: always read the attribute.
 * - A rule needs `action = FR_ACT_TO_TBL` ('toTbl'): 0 is not "lookup".
 *   RTM_NEWRULE without NLM_F_EXCL happily adds a second identical rule;
 *   with it an existing one is EEXIST. Rule and route dumps are not filtered
 *   by the kernel (legacy parsing, see netlink-dataplane.ts): filtered here.
 * - A route's `src` must be a local address when the route is added
 *   (EINVAL, "Invalid prefsrc address"), so the address goes on first.
 *   Deleting a device removes its routes; a route whose `src` lives on
 *   another device survives that device's deletion (only deleting the
 *   address itself flushes routes that use it).
 * - RTM_DELROUTE (IPv4) matches any scope only with RT_SCOPE_NOWHERE in the
 *   request; a missing route is ESRCH.
 */
import type { rt } from 'netlink';
import { TsoverlayError } from '../errors.js';
import { bytesToIp, ipToBytes } from './netlink/addr.js';
import type { TableRoute } from './dataplane.js';
import { errnoOf } from './netlink/kernel-error.js';
import type { Log } from '../log.js';
import type { Exec } from './netlink/lane.js';
import {
  checkHostAddress,
  checkRoutingDevice,
  checkRulePriority,
  checkTable,
  checkTableRoute,
  isIpv6LinkLocal,
  sortAddresses,
  sortTableRoutes,
} from './routing-spec.js';
import {
  AF_INET,
  AF_INET6,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  RT_SCOPE_HOST,
  RT_SCOPE_LINK,
  RT_SCOPE_NOWHERE,
} from './netlink/linux.js';


/** What the routing calls need from `NetlinkDataplane`. */
export interface RoutingKernel {
  exec: Exec;
  /** One RTM_GETLINK by name; undefined if there is no such device. */
  findLink(name: string): Promise<{ index: number; kind: string } | undefined>;
  /** Device names by index (one link dump: of every link, or of one kind). */
  linkNames(kind?: string): Promise<Map<number, string>>;
  log: Log;
}

const af = (family: 4 | 6): number => (family === 4 ? AF_INET : AF_INET6);
const fullPrefix = (family: 4 | 6): number => (family === 4 ? 32 : 128);
/** Header value for a table id (see the netlink notes); the real id always goes in the attribute. */
const headerTable = (table: number): number => (table < 256 ? table : 0);
const msgTable = (m: { data: { table?: number }; attrs: { table?: number } }): number | undefined => m.attrs.table ?? m.data.table;
const isToTable = (action: unknown): boolean => action === 'toTbl' || action === 1;
const isUnicast = (type: unknown): boolean => type === 'UNICAST' || type === 1;

/** Bytes of a canonical IP that routing-spec already validated. */
const bytes = (ip: string): Buffer => {
  const b = ipToBytes(ip);
  if (!b) throw new TsoverlayError('INVALID_OPTION', `"${ip}" is not an IP address`);
  return b;
};

/** IPs by link index, without IPv6 link-local, sorted as `ObservedLink.addresses`. */
export const addressesByLink = (addrs: readonly { index: number; address: string }[]): Map<number, string[]> => {
  const out = new Map<number, string[]>();
  for (const a of addrs) {
    if (isIpv6LinkLocal(ipToBytes(a.address) ?? Buffer.alloc(0))) continue;
    out.set(a.index, [...(out.get(a.index) ?? []), a.address]);
  }
  for (const [index, list] of out) out.set(index, sortAddresses(list));
  return out;
};

interface KernelRule {
  src?: string;
  srcLen: number;
  priority: number;
  table: number | undefined;
  action: rt.Rule['action'];
}

export class NetlinkRouting {
  constructor(private readonly k: RoutingKernel) {}

  async ensureBridgeAddress(bridge: string, address: string): Promise<void> {
    const op = 'ensure bridge address';
    checkRoutingDevice('bridge', bridge);
    const ip = checkHostAddress(`address for ${bridge}`, address);
    const link = await this.k.findLink(bridge);
    if (!link) throw new TsoverlayError('KERNEL_FAILURE', `${op} ${bridge}: no such bridge`);
    // a macvlan-mode network's host device stands where the bridge would
    if (link.kind !== 'bridge' && link.kind !== 'macvlan') {
      throw new TsoverlayError('KERNEL_FAILURE', `${op} ${bridge}: not a bridge (kind ${link.kind || 'none'})`);
    }
    await this.ensureAddress(bridge, link.index, ip, RT_SCOPE_LINK);
  }

  /**
   * R on the loopback device (scope host), so the resolver can bind to it
   * before any network exists. It changes no route: a /32 on lo only adds a
   * local-table entry, and the host answers ARP on the bridges from their
   * own (link-scope) copy of R.
   */
  async ensureLocalAddress(address: string): Promise<void> {
    const ip = checkHostAddress('resolver address', address);
    const link = await this.k.findLink('lo');
    if (!link) throw new TsoverlayError('KERNEL_FAILURE', 'ensure local address: no loopback device');
    await this.ensureAddress('lo', link.index, ip, RT_SCOPE_HOST);
  }

  private async ensureAddress(device: string, index: number, ip: { address: string; family: 4 | 6 }, scope: number): Promise<void> {
    const prefixlen = fullPrefix(ip.family);
    const b = bytes(ip.address);
    const msgs = await this.k.exec('dump', 'addresses', (s, o) => s.getAddresses({ family: af(ip.family) }, {}, o));
    const present = msgs.some((m) => {
      const have = m.attrs.local ?? m.attrs.address;
      return m.data.index === index && m.data.prefixlen === prefixlen && have !== undefined && b.equals(have);
    });
    if (present) return;
    const header: rt.Address =
      ip.family === 4
        ? { family: AF_INET, prefixlen, scope, index }
        : { family: AF_INET6, prefixlen, index, flags: { nodad: true } };
    const attrs: rt.AddressAttrs = { local: b, address: b, ...(ip.family === 6 ? { flags: { nodad: true, noprefixroute: true } } : {}) };
    try {
      await this.k.exec('add address', device, (s, o) => s.newAddress(header, attrs, { ...o, flags: NLM_F_CREATE | NLM_F_EXCL }), ip.address);
    } catch (e) {
      if (errnoOf(e) === 'EEXIST') return; // a concurrent ensure added it first
      throw e;
    }
    this.k.log.info({ ifname: device, address: ip.address }, 'address added');
  }

  async ensureSourceRule(source: string, table: number, priority: number): Promise<void> {
    const src = checkHostAddress('rule source', source);
    checkTable(table);
    checkRulePriority(priority);
    const srcLen = fullPrefix(src.family);
    const device = `from ${src.address}`;
    const rules = (await this.dumpRules(src.family)).filter((r) => r.src === src.address && r.srcLen === srcLen && r.priority === priority);
    const ours = (r: KernelRule): boolean => r.table === table && isToTable(r.action);
    for (const stale of rules.filter((r) => !ours(r))) {
      this.k.log.warn({ source: src.address, priority, table: stale.table, want: table }, 'replacing a rule from the resolver address that looks up another table');
      await this.k.exec(
        'delete rule',
        device,
        (s, o) =>
          s.delRule(
            { family: af(src.family), srcLen, ...(stale.action === undefined ? {} : { action: stale.action }) },
            { src: bytes(src.address), priority, ...(stale.table === undefined ? {} : { table: stale.table }) },
            o,
          ),
        `priority ${priority} table ${stale.table ?? 'none'}`,
      );
    }
    if (rules.some(ours)) return;
    try {
      await this.k.exec(
        'add rule',
        device,
        (s, o) =>
          s.newRule(
            { family: af(src.family), srcLen, table: headerTable(table), action: 'toTbl' },
            { src: bytes(src.address), priority, table },
            { ...o, flags: NLM_F_CREATE | NLM_F_EXCL },
          ),
        `lookup ${table} priority ${priority}`,
      );
    } catch (e) {
      if (errnoOf(e) === 'EEXIST') return; // a concurrent ensure added it first
      throw e;
    }
    this.k.log.info({ source: src.address, table, priority }, 'added policy rule');
  }

  async listTableRoutes(table: number): Promise<TableRoute[]> {
    checkTable(table);
    const found: { dst: string; oif: number; src?: string }[] = [];
    for (const family of [4, 6] as const) {
      const msgs = await this.k.exec('dump', `IPv${family} routes`, (s, o) => s.getRoutes({ family: af(family) }, {}, o));
      for (const m of msgs) {
        if (m.data.family !== af(family) || msgTable(m) !== table || !isUnicast(m.data.type) || !m.attrs.oif) continue;
        const dstLen = m.data.dstLen ?? 0;
        const dst = m.attrs.dst ?? Buffer.alloc(family === 4 ? 4 : 16);
        const r: { dst: string; oif: number; src?: string } = { dst: `${bytesToIp(dst)}/${dstLen}`, oif: m.attrs.oif };
        if (m.attrs.prefsrc) r.src = bytesToIp(m.attrs.prefsrc);
        found.push(r);
      }
    }
    if (found.length === 0) return [];
    // Our routes lead to our networks' host devices: bridges, or in macvlan
    // mode macvlans. Dump only those kinds (a host has thousands of veths),
    // and every link only if a route leads elsewhere.
    let names = new Map([...(await this.k.linkNames('bridge')), ...(await this.k.linkNames('macvlan'))]);
    if (found.some(({ oif }) => !names.has(oif))) names = await this.k.linkNames();
    return sortTableRoutes(
      found.map(({ dst, oif, src }) => ({ dst, dev: names.get(oif) ?? `#${oif}`, ...(src === undefined ? {} : { src }) })),
    );
  }

  async ensureTableRoute(table: number, route: TableRoute): Promise<void> {
    const spec = checkTableRoute(table, route);
    const link = await this.k.findLink(spec.dev);
    if (!link) throw new TsoverlayError('KERNEL_FAILURE', `ensure table route ${spec.dev}: no such device`);
    const header: rt.Route = {
      family: af(spec.family),
      dstLen: spec.prefix,
      table: headerTable(table),
      protocol: 'STATIC',
      type: 'UNICAST',
      ...(spec.family === 4 ? { scope: RT_SCOPE_LINK } : {}),
    };
    const attrs: rt.RouteAttrs = {
      dst: bytes(spec.network),
      oif: link.index,
      table,
      ...(spec.src === undefined ? {} : { prefsrc: bytes(spec.src) }),
    };
    // REPLACE: one route per dst in the table; a replay rewrites it unchanged.
    await this.k.exec(
      'ensure table route',
      spec.dev,
      (s, o) => s.newRoute(header, attrs, { ...o, flags: NLM_F_CREATE | NLM_F_REPLACE }),
      `${spec.dst} table ${table}${spec.src === undefined ? '' : ` src ${spec.src}`}`,
    );
  }

  async deleteTableRoute(table: number, route: { dst: string; dev: string }): Promise<boolean> {
    const spec = checkTableRoute(table, route);
    const link = await this.k.findLink(spec.dev);
    if (!link) return false; // its routes went with the device
    try {
      await this.k.exec(
        'delete table route',
        spec.dev,
        (s, o) =>
          s.delRoute(
            { family: af(spec.family), dstLen: spec.prefix, table: headerTable(table), ...(spec.family === 4 ? { scope: RT_SCOPE_NOWHERE } : {}) },
            { dst: bytes(spec.network), oif: link.index, table },
            o,
          ),
        `${spec.dst} table ${table}`,
      );
      return true;
    } catch (e) {
      const errno = errnoOf(e);
      if (errno === 'ESRCH' || errno === 'ENOENT') return false;
      throw e;
    }
  }

  private async dumpRules(family: 4 | 6): Promise<KernelRule[]> {
    const msgs = await this.k.exec('dump', `IPv${family} rules`, (s, o) => s.getRules({ family: af(family) }, {}, o));
    return msgs
      .filter((m) => m.data.family === af(family))
      .map((m) => {
        const r: KernelRule = { srcLen: m.data.srcLen ?? 0, priority: m.attrs.priority ?? 0, table: msgTable(m), action: m.data.action };
        if (m.attrs.src) r.src = bytesToIp(m.attrs.src);
        return r;
      });
  }
}
