/**
 * The fake's resolver routing: addresses live on their device (and vanish
 * with it), one rule per source+priority, table routes keyed by dst (a new
 * dev/src replaces the route; `src` must be an address of the host, the
 * device up: else EINVAL / ENETDOWN as the kernel answers).
 */
import { TsoverlayError } from '../errors.js';
import type { SourceRule, TableRoute } from './dataplane.js';
import { type FakeKernel, kernel } from './fake-kernel.js';
import {
  checkHostAddress,
  checkRoutingDevice,
  checkRulePriority,
  checkTable,
  checkTableRoute,
  sortAddresses,
  sortSourceRules,
  sortTableRoutes,
} from './routing-spec.js';

export class FakeRouting {
  constructor(private readonly k: FakeKernel) {}

  async ensureLocalAddress(address: string): Promise<void> {
    this.k.calls.push(`ensureLocalAddress ${address}`);
    this.k.localAddresses.add(address);
  }

  async ensureBridgeAddress(bridge: string, address: string): Promise<void> {
    this.k.calls.push(`ensureBridgeAddress ${bridge} ${address}`);
    this.k.hit('ensureBridgeAddress');
    checkRoutingDevice('bridge', bridge);
    const ip = checkHostAddress(`address for ${bridge}`, address);
    const link = this.k.links.get(bridge);
    if (!link) throw new TsoverlayError('KERNEL_FAILURE', `ensure bridge address ${bridge}: no such bridge`);
    if (link.kind !== 'bridge' && link.kind !== 'macvlan') {
      throw new TsoverlayError('KERNEL_FAILURE', `ensure bridge address ${bridge}: not a bridge (kind ${link.kind || 'none'})`);
    }
    link.addresses ??= new Set();
    if (link.addresses.has(ip.address)) return;
    link.addresses.add(ip.address);
    this.k.calls.push(`addAddress ${bridge} ${ip.address}`);
  }

  async ensureSourceRule(source: string, table: number, priority: number): Promise<void> {
    this.k.calls.push(`ensureSourceRule ${source} ${table} ${priority}`);
    this.k.hit('ensureSourceRule');
    const src = checkHostAddress('rule source', source);
    checkTable(table);
    checkRulePriority(priority);
    for (let i = this.k.rules.length - 1; i >= 0; i--) {
      const r = this.k.rules[i];
      if (r && r.source === src.address && r.priority === priority && r.table !== table) {
        this.k.rules.splice(i, 1);
        this.k.calls.push(`removeRule ${r.source} ${r.table} ${r.priority}`);
      }
    }
    if (this.k.rules.some((r) => r.source === src.address && r.priority === priority)) return;
    this.k.rules.push({ source: src.address, table, priority });
    this.k.calls.push(`addRule ${src.address} ${table} ${priority}`);
  }

  async listTableRoutes(table: number): Promise<TableRoute[]> {
    this.k.hit('listTableRoutes');
    checkTable(table);
    return sortTableRoutes([...(this.k.tables.get(table)?.values() ?? [])].map((r) => ({ ...r })));
  }

  async ensureTableRoute(table: number, route: TableRoute): Promise<void> {
    this.k.calls.push(`ensureTableRoute ${table} ${route.dst} ${route.dev}`);
    this.k.hit('ensureTableRoute');
    const spec = checkTableRoute(table, route);
    const link = this.k.links.get(spec.dev);
    if (!link) throw new TsoverlayError('KERNEL_FAILURE', `ensure table route ${spec.dev}: no such device`);
    const detail = `${spec.dst} table ${table}${spec.src === undefined ? '' : ` src ${spec.src}`}`;
    if (!link.up) throw kernel('ensure table route', spec.dev, 'ENETDOWN', detail);
    if (spec.src !== undefined && !this.k.isLocalAddress(spec.src)) throw kernel('ensure table route', spec.dev, 'EINVAL', detail);
    const want: TableRoute = { dst: spec.dst, dev: spec.dev, ...(spec.src === undefined ? {} : { src: spec.src }) };
    const routes = this.k.tables.get(table) ?? new Map<string, TableRoute>();
    this.k.tables.set(table, routes);
    const have = routes.get(spec.dst);
    if (have && have.dev === want.dev && have.src === want.src) return;
    routes.set(spec.dst, want);
    this.k.calls.push(`setRoute ${table} ${want.dst} ${want.dev}${want.src === undefined ? '' : ` ${want.src}`}`);
  }

  async deleteTableRoute(table: number, route: { dst: string; dev: string }): Promise<boolean> {
    this.k.calls.push(`deleteTableRoute ${table} ${route.dst} ${route.dev}`);
    this.k.hit('deleteTableRoute');
    const spec = checkTableRoute(table, route);
    const routes = this.k.tables.get(table);
    if (routes?.get(spec.dst)?.dev !== spec.dev) return false;
    routes.delete(spec.dst);
    this.k.calls.push(`removeRoute ${table} ${spec.dst} ${spec.dev}`);
    return true;
  }

  async listSourceRules(table: number): Promise<SourceRule[]> {
    checkTable(table);
    return sortSourceRules(this.k.rules.filter((r) => r.table === table).map((r) => ({ ...r })));
  }

  async deleteSourceRule(rule: SourceRule): Promise<boolean> {
    this.k.calls.push(`deleteSourceRule ${rule.source} ${rule.table} ${rule.priority}`);
    const src = checkHostAddress('rule source', rule.source);
    checkTable(rule.table);
    checkRulePriority(rule.priority);
    const i = this.k.rules.findIndex((r) => r.source === src.address && r.table === rule.table && r.priority === rule.priority);
    if (i < 0) return false;
    this.k.rules.splice(i, 1);
    this.k.calls.push(`removeRule ${src.address} ${rule.table} ${rule.priority}`);
    return true;
  }

  async listLocalAddresses(): Promise<string[]> {
    return sortAddresses([...this.k.localAddresses].map((a) => checkHostAddress('local address', a).address));
  }

  async deleteLocalAddress(address: string): Promise<boolean> {
    this.k.calls.push(`deleteLocalAddress ${address}`);
    const ip = checkHostAddress('local address', address);
    const have = [...this.k.localAddresses].find((a) => checkHostAddress('local address', a).address === ip.address);
    if (have === undefined) return false;
    this.k.localAddresses.delete(have);
    this.k.calls.push(`removeAddress lo ${ip.address}`);
    return true;
  }
}
