/**
 * FakeFirewall: the `Firewall` port in memory, for tests. It keeps the rules
 * and chains the real one would add (iptables-firewall.ts: the bridge rules
 * of both families, DOCKER-USER's where `dockerUser` says that chain exists,
 * the resolver's INPUT rules, its source filter chain, the VXLAN member
 * chain, each with its jump), so cleanup can list and delete them.
 */
import type { Firewall, FirewallChain, FirewallRule, ResolverSource } from './firewall.js';
import type { OwnedChain } from './iptables-chain.js';
import { BRIDGE_RULES, DOCKER_USER_RULE, resolverRules, vxlanMemberChain } from './iptables-firewall.js';
import { canonicalIp } from './netlink/addr.js';
import { legacyResolverAccept, resolverFilterChain } from './resolver-filter.js';

const COMMANDS = ['iptables', 'ip6tables'] as const;
const same = (a: FirewallRule, b: FirewallRule): boolean =>
  a.command === b.command && a.table === b.table && a.chain === b.chain && a.args.join('\0') === b.args.join('\0');
const sameChain = (a: FirewallChain, b: FirewallChain): boolean => a.command === b.command && a.table === b.table && a.chain === b.chain;

/** For tests: counts calls, records resolver addresses and VXLAN members, keeps the rules, can fail. */
export class FakeFirewall implements Firewall {
  /** Calls of `ensureBridgeForwarding`. */
  calls = 0;
  fail: Error | undefined;
  /** The address of every `ensureResolverInput` call, in order. */
  resolverInput: string[] = [];
  failResolverInput: Error | undefined;
  /** The member list per VXLAN port, as last ensured. */
  vxlanMembers = new Map<number, string[]>();
  /** Calls of `ensureVxlanMembers` that changed something. */
  vxlanWrites = 0;
  failVxlanMembers: Error | undefined;
  /** The rules in the resolver's source filter per command, as last written (`-s <subnet> -i <device> -j ACCEPT`, then the DROPs). */
  resolverSources = new Map<'iptables' | 'ip6tables', string[][]>();
  /** Calls of `ensureResolverSources` that changed something. */
  resolverSourceWrites = 0;
  failResolverSources: Error | undefined;
  /** Whether dockerd's DOCKER-USER chain exists (then the bridge rule goes there too). */
  dockerUser = false;
  /** The rules in place outside chains of ours, in the order added. */
  readonly rules: FirewallRule[] = [];
  /** The chains of ours in place. */
  readonly chains: FirewallChain[] = [];

  async ensureBridgeForwarding(): Promise<void> {
    this.calls++;
    if (this.fail) throw this.fail;
    for (const command of COMMANDS) {
      for (const [table, chain, ...args] of this.dockerUser ? [DOCKER_USER_RULE, ...BRIDGE_RULES] : BRIDGE_RULES) {
        this.add({ command, table: table === 'raw' ? 'raw' : 'filter', chain: chain ?? '', args });
      }
    }
  }

  async ensureResolverInput(address: string): Promise<void> {
    this.resolverInput.push(address);
    if (this.failResolverInput) throw this.failResolverInput;
    const ip = canonicalIp(address);
    if (!ip) return;
    const { accept, drop } = resolverRules(ip.address, ip.family);
    const command = ip.family === 4 ? 'iptables' : 'ip6tables';
    for (const args of [...accept, drop]) this.add({ command, table: 'filter', chain: 'INPUT', args });
  }

  async ensureResolverSources(address: string, sources: readonly ResolverSource[]): Promise<boolean> {
    if (this.failResolverSources) throw this.failResolverSources;
    const ip = canonicalIp(address);
    if (!ip) throw new Error(`resolver address "${address}" is not an IP address`);
    const spec = resolverFilterChain(ip.address, ip.family, sources);
    if (spec.rules.length <= 2) throw new Error('refusing an empty resolver source list');
    this.placeChain(spec);
    // the unfiltered rule of earlier versions goes once the jump is in
    const legacy = this.rules.findIndex((r) => same(r, { command: spec.cmd, table: 'filter', chain: 'INPUT', args: legacyResolverAccept(ip.address, ip.family) }));
    if (legacy >= 0) this.rules.splice(legacy, 1);
    const next = spec.rules.map((r) => [...r]);
    if (legacy < 0 && JSON.stringify(this.resolverSources.get(spec.cmd)) === JSON.stringify(next)) return false;
    this.resolverSources.set(spec.cmd, next);
    this.resolverSourceWrites++;
    return true;
  }

  async ensureVxlanMembers(port: number, members: readonly string[]): Promise<boolean> {
    if (this.failVxlanMembers) throw this.failVxlanMembers;
    if (members.length === 0) throw new Error('refusing an empty VXLAN member list');
    const family = canonicalIp(members[0] ?? '')?.family ?? 4;
    this.placeChain(vxlanMemberChain(port, family, members));
    const next = [...members].sort();
    if (JSON.stringify(this.vxlanMembers.get(port)) === JSON.stringify(next)) return false;
    this.vxlanMembers.set(port, next);
    this.vxlanWrites++;
    return true;
  }

  async listOwnedRules(): Promise<FirewallRule[]> {
    return this.rules.map((r) => ({ ...r, args: [...r.args] }));
  }

  async deleteRule(rule: FirewallRule): Promise<boolean> {
    const i = this.rules.findIndex((r) => same(r, rule));
    if (i < 0) return false;
    this.rules.splice(i, 1);
    return true;
  }

  async listOwnedChains(): Promise<FirewallChain[]> {
    return this.chains.map((c) => ({ ...c }));
  }

  async deleteChain(chain: FirewallChain): Promise<boolean> {
    const i = this.chains.findIndex((c) => sameChain(c, chain));
    if (i < 0) return false;
    if (this.rules.some((r) => r.command === chain.command && r.table === chain.table && r.args.at(-1) === chain.chain)) {
      throw new Error(`chain ${chain.chain} is still jumped to`); // as iptables -X refuses
    }
    this.chains.splice(i, 1);
    return true;
  }

  /** The chain, and one jump into it (a changed match replaces the jump), as ensureOwnedChain leaves them. */
  private placeChain(spec: OwnedChain): void {
    const chain: FirewallChain = { command: spec.cmd, table: spec.table, chain: spec.chain };
    if (!this.chains.some((c) => sameChain(c, chain))) this.chains.push(chain);
    for (let i = this.rules.length - 1; i >= 0; i--) {
      const r = this.rules[i];
      if (r?.command === spec.cmd && r.table === spec.table && r.args.at(-1) === spec.chain) this.rules.splice(i, 1);
    }
    this.add({ command: spec.cmd, table: spec.table, chain: spec.jump.from, args: [...spec.jump.match, '-j', spec.chain] });
  }

  private add(rule: FirewallRule): void {
    if (!this.rules.some((r) => same(r, rule))) this.rules.push(rule);
  }
}
