/**
 * Reading back and removing the resolver's policy rules and loopback
 * addresses over rtnetlink, for `tsoverlay cleanup` (the ensures that add
 * them are in netlink-routing.ts, whose netlink notes apply: table ids above
 * 255 travel in the attribute, dumps are filtered here).
 */
import { bytesToIp, ipToBytes } from './netlink/addr.js';
import type { SourceRule } from './dataplane.js';
import { errnoOf } from './netlink/kernel-error.js';
import type { RoutingKernel } from './netlink-routing.js';
import { checkHostAddress, checkRulePriority, checkTable, sortAddresses, sortSourceRules } from './routing-spec.js';
import { AF_INET, AF_INET6 } from './netlink/linux.js';

const af = (family: 4 | 6): number => (family === 4 ? AF_INET : AF_INET6);
const fullPrefix = (family: 4 | 6): number => (family === 4 ? 32 : 128);
const headerTable = (table: number): number => (table < 256 ? table : 0);
const isToTable = (action: unknown): boolean => action === 'toTbl' || action === 1;
const gone = (e: unknown): boolean => ['ENOENT', 'ESRCH', 'EADDRNOTAVAIL'].includes(errnoOf(e) ?? '');

const bytes = (ip: string): Buffer => ipToBytes(ip) ?? Buffer.alloc(0);

export class NetlinkTeardown {
  constructor(private readonly k: Pick<RoutingKernel, 'exec' | 'findLink' | 'log'>) {}

  async listSourceRules(table: number): Promise<SourceRule[]> {
    checkTable(table);
    const out: SourceRule[] = [];
    for (const family of [4, 6] as const) {
      const msgs = await this.k.exec('dump', `IPv${family} rules`, (s, o) => s.getRules({ family: af(family) }, {}, o));
      for (const m of msgs) {
        const t = m.attrs.table ?? m.data.table;
        if (m.data.family !== af(family) || t !== table || !isToTable(m.data.action)) continue;
        if (!m.attrs.src || m.data.srcLen !== fullPrefix(family)) continue;
        out.push({ source: bytesToIp(m.attrs.src), table, priority: m.attrs.priority ?? 0 });
      }
    }
    return sortSourceRules(out);
  }

  async deleteSourceRule(rule: SourceRule): Promise<boolean> {
    const src = checkHostAddress('rule source', rule.source);
    checkTable(rule.table);
    checkRulePriority(rule.priority);
    const present = (await this.listSourceRules(rule.table)).some((r) => r.source === src.address && r.priority === rule.priority);
    if (!present) return false;
    try {
      await this.k.exec(
        'delete rule',
        `from ${src.address}`,
        (s, o) =>
          s.delRule(
            { family: af(src.family), srcLen: fullPrefix(src.family), table: headerTable(rule.table), action: 'toTbl' },
            { src: bytes(src.address), priority: rule.priority, table: rule.table },
            o,
          ),
        `lookup ${rule.table} priority ${rule.priority}`,
      );
    } catch (e) {
      if (gone(e)) return false;
      throw e;
    }
    this.k.log.info({ source: src.address, table: rule.table, priority: rule.priority }, 'policy rule deleted');
    return true;
  }

  async listLocalAddresses(): Promise<string[]> {
    const lo = await this.k.findLink('lo');
    if (!lo) return [];
    const out: string[] = [];
    for (const family of [4, 6] as const) {
      const msgs = await this.k.exec('dump', 'addresses', (s, o) => s.getAddresses({ family: af(family) }, {}, o));
      for (const m of msgs) {
        const have = m.attrs.local ?? m.attrs.address;
        if (m.data.family !== af(family) || m.data.index !== lo.index || m.data.prefixlen !== fullPrefix(family) || !have) continue;
        out.push(bytesToIp(have));
      }
    }
    return sortAddresses([...new Set(out)]);
  }

  async deleteLocalAddress(address: string): Promise<boolean> {
    const ip = checkHostAddress('local address', address);
    if (!(await this.listLocalAddresses()).includes(ip.address)) return false;
    const lo = await this.k.findLink('lo');
    if (!lo) return false;
    const b = bytes(ip.address);
    try {
      await this.k.exec(
        'delete address',
        'lo',
        (s, o) => s.delAddress({ family: af(ip.family), prefixlen: fullPrefix(ip.family), index: lo.index }, { local: b, address: b }, o),
        ip.address,
      );
    } catch (e) {
      if (gone(e)) return false;
      throw e;
    }
    this.k.log.info({ ifname: 'lo', address: ip.address }, 'address deleted');
    return true;
  }
}
