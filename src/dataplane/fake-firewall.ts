/**
 * FakeFirewall: the `Firewall` port in memory, for tests. It keeps the rules
 * and chains the real one would add (iptables-firewall.ts: the bridge rules
 * of both families, DOCKER-USER's where `dockerUser` says that chain exists,
 * the resolver's INPUT rules, the VXLAN member chain and its jump), so
 * cleanup can list and delete them.
 */
import type { Firewall, FirewallChain, FirewallRule } from './firewall.js';
import { BRIDGE_RULES, DOCKER_USER_RULE, resolverRules, VXLAN_CHAIN, vxlanMemberChain } from './iptables-firewall.js';
import { canonicalIp } from './netlink/addr.js';

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

  async ensureVxlanMembers(port: number, members: readonly string[]): Promise<boolean> {
    if (this.failVxlanMembers) throw this.failVxlanMembers;
    if (members.length === 0) throw new Error('refusing an empty VXLAN member list');
    const family = canonicalIp(members[0] ?? '')?.family ?? 4;
    const spec = vxlanMemberChain(port, family, members);
    const chain: FirewallChain = { command: spec.cmd, table: spec.table, chain: spec.chain };
    if (!this.chains.some((c) => sameChain(c, chain))) this.chains.push(chain);
    // one jump into the chain: a changed port replaces it
    for (let i = this.rules.length - 1; i >= 0; i--) {
      const r = this.rules[i];
      if (r?.command === spec.cmd && r.args.at(-1) === VXLAN_CHAIN) this.rules.splice(i, 1);
    }
    this.add({ command: spec.cmd, table: spec.table, chain: spec.jump.from, args: [...spec.jump.match, '-j', spec.chain] });
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

  private add(rule: FirewallRule): void {
    if (!this.rules.some((r) => same(r, rule))) this.rules.push(rule);
  }
}
