/**
 * IptablesFirewall: the `Firewall` port (firewall.ts) with iptables and
 * ip6tables.
 *
 * Host firewall: frames between ports of our bridges must pass.
 *
 * With iptables on, dockerd loads br_netfilter (net.bridge.bridge-nf-call-
 * iptables=1: bridged frames traverse the FORWARD chain) and sets FORWARD's
 * policy to DROP, accepting only its own bridges. Docker's overlay escapes
 * this by keeping its bridge in a namespace of its own; tsoverlay's bridges
 * live in the host namespace, so it accepts bridged traffic within them:
 *
 *   -A FORWARD -i tsbr+ -o tsbr+ -j ACCEPT      (iptables and ip6tables)
 *   -A DOCKER-USER -i tsbr+ -o tsbr+ -j ACCEPT  (at its top, where dockerd made it)
 *
 * and, in the raw table, takes that traffic out of connection tracking, as
 * it is in Docker's overlay namespaces (no rules there, so no conntrack):
 * tracking every bridged frame of the overlay costs latency and throughput,
 * and nothing of ours matches on connection state or NATs it.
 *
 *   -t raw -A PREROUTING -i tsbr+ -j CT --notrack
 *
 * Frames cannot cross from one tsoverlay bridge to another this way: the
 * host never routes between them (their only address is the resolver's /32,
 * and no route to a container subnet exists outside the resolver's table,
 * which only packets from the resolver address use).
 *
 * The node's DNS resolver listens on a link-local address R that is on every
 * tsoverlay bridge. It must answer containers only, not the underlay network
 * (a neighbour with a route to R via this node would reach it), and each
 * container only from its own network's device (resolver-filter.ts):
 *
 *   -A INPUT -d R -i tsbr+ -j TSOVERLAY-DNS   (per network: its subnet from its device)
 *   -A INPUT -d R -i lo -j ACCEPT             (the node itself)
 *   -A INPUT -d R -j DROP
 *
 * at the top of INPUT, in that order (iptables for IPv4, ip6tables for IPv6).
 *
 * The VXLAN port takes packets from the cluster's members only: whoever else
 * reaches UDP 4789 could otherwise inject frames into any network. A chain
 * of ours in the raw table (before connection tracking and decapsulation),
 * written whole from membership on each change (iptables-chain.ts):
 *
 *   -t raw -I PREROUTING 1 -p udp -m udp --dport 4789 -j TSOVERLAY-VXLAN
 *   -t raw -A TSOVERLAY-VXLAN -i lo -j RETURN
 *   -t raw -A TSOVERLAY-VXLAN -s <member VTEP>/32 -j RETURN     (one per member, the node's own too)
 *   -t raw -A TSOVERLAY-VXLAN -m comment --comment "tsoverlay: VXLAN from a non-member" -j DROP
 *
 * RETURN, not ACCEPT: a member's packet goes on through PREROUTING exactly
 * as it did without the chain.
 *
 * This is the one place tsoverlay runs a command (iptables keeps no stable
 * netlink API of its own); a host without iptables needs no rule.
 */
import { TsoverlayError } from '../errors.js';
import { canonicalIp } from './netlink/addr.js';
import type { Log } from '../log.js';
import type { Firewall, FirewallChain, FirewallRule, ResolverSource } from './firewall.js';
import { deleteIptablesChain, deleteIptablesRule, listOwnedIptables } from './iptables-teardown.js';
import { type CommandResult, type CommandRunner, runCommand } from './command.js';
import { ensureOwnedChain, type OwnedChain, quoteArg } from './iptables-chain.js';
import { BRIDGE_MATCH, DNS_CHAIN, ensureResolverFilter, RESOLVER_COMMENT } from './resolver-filter.js';

export { type CommandResult, type CommandRunner, runCommand } from './command.js';
export { BRIDGE_MATCH, DNS_CHAIN, RESOLVER_COMMENT } from './resolver-filter.js';

const BRIDGE_ACCEPT = ['-i', BRIDGE_MATCH, '-o', BRIDGE_MATCH, '-m', 'comment', '--comment', 'tsoverlay bridges', '-j', 'ACCEPT'];
/** The bridge rules, each as [table, chain, ...match and target]. */
export const BRIDGE_RULES: readonly (readonly string[])[] = [
  ['filter', 'FORWARD', ...BRIDGE_ACCEPT],
  ['raw', 'PREROUTING', '-i', BRIDGE_MATCH, '-m', 'comment', '--comment', 'tsoverlay bridges: no conntrack', '-j', 'CT', '--notrack'],
];
/**
 * dockerd's chain for the host's own rules: FORWARD jumps to it before any
 * rule of Docker's, and Docker never reorders or flushes it. Where it exists
 * the ACCEPT goes at its top as well: every bridged frame of the overlay
 * passes the FORWARD chain (bridge-nf-call-iptables), and dockerd re-inserts
 * its own jumps above a FORWARD rule of ours whenever it sets up a network,
 * so there each frame would walk Docker's rules first (measured: ~2-4 us of
 * a 16 us round trip).
 */
export const DOCKER_USER_RULE: readonly string[] = ['filter', 'DOCKER-USER', ...BRIDGE_ACCEPT];

/**
 * The resolver's INPUT rules (without the chain) besides the jump into its
 * source filter (resolver-filter.ts), in the order they must have at the
 * top of INPUT, below that jump.
 */
export const resolverRules = (address: string, family: 4 | 6): { accept: string[][]; drop: string[] } => {
  const dst = ['-d', `${address}/${family === 4 ? 32 : 128}`];
  const tag = ['-m', 'comment', '--comment', RESOLVER_COMMENT];
  return {
    accept: [[...dst, '-i', 'lo', ...tag, '-j', 'ACCEPT']],
    drop: [...dst, ...tag, '-j', 'DROP'],
  };
};


export const VXLAN_CHAIN = 'TSOVERLAY-VXLAN';
export const VXLAN_DROP_COMMENT = 'tsoverlay: VXLAN from a non-member';

/** The VXLAN member chain for UDP `port` and these members (bare addresses of `family`). */
export const vxlanMemberChain = (port: number, family: 4 | 6, members: readonly string[]): OwnedChain => ({
  cmd: family === 4 ? 'iptables' : 'ip6tables',
  table: 'raw',
  chain: VXLAN_CHAIN,
  rules: [
    ['-i', 'lo', '-j', 'RETURN'],
    ...members.map((a) => ['-s', `${a}/${family === 4 ? 32 : 128}`, '-j', 'RETURN']),
    ['-m', 'comment', '--comment', VXLAN_DROP_COMMENT, '-j', 'DROP'],
  ],
  jump: { from: 'PREROUTING', match: ['-p', 'udp', '-m', 'udp', '--dport', String(port)] },
});

export class IptablesFirewall implements Firewall {
  private missing = new Set<string>();

  constructor(
    private readonly log?: Log,
    private readonly run: CommandRunner = runCommand,
  ) {}

  async ensureBridgeForwarding(): Promise<void> {
    const failures: string[] = [];
    // the two families side by side: each command is a process (~20-50 ms)
    await Promise.all(['iptables', 'ip6tables'].map(async (cmd) => {
      if (this.missing.has(cmd)) return;
      const dockerUser = await this.run(cmd, ['-w', '5', '-S', 'DOCKER-USER']);
      const rules = dockerUser.code === 0 ? [DOCKER_USER_RULE, ...BRIDGE_RULES] : BRIDGE_RULES;
      for (const [table, ...rule] of rules) {
        if (this.missing.has(cmd)) continue;
        const check = await this.run(cmd, ['-w', '5', '-t', table as string, '-C', ...rule]);
        if (check.code === 0) continue;
        if (isNotFound(check)) {
          this.missing.add(cmd);
          this.log?.warn({ cmd }, `${cmd} not found; if the host firewall filters bridged traffic, containers on one tsoverlay network cannot reach each other`);
          continue;
        }
        const add = await this.run(cmd, ['-w', '5', '-t', table as string, '-I', ...rule]);
        if (add.code === 0) this.log?.info({ cmd, table, chain: rule[0] }, 'firewall rule for tsoverlay bridges added');
        else failures.push(`${cmd} -t ${table}: ${add.stderr.trim()}`);
      }
    }));
    if (failures.length > 0) throw new Error(`could not add the firewall rule for tsoverlay bridges: ${failures.join('; ')}`);
  }

  /**
   * Check each rule with -C; insert missing ACCEPTs at the top (above any
   * DROP of ours), then a missing DROP right below the last of our ACCEPTs
   * and the jump into the source filter (found with -S), so a rule re-added
   * after someone deleted it lands in the right place.
   */
  async ensureResolverInput(address: string): Promise<void> {
    const ip = canonicalIp(address);
    if (!ip) throw new TsoverlayError('INVALID_OPTION', `resolver address "${address}" is not an IP address`);
    const cmd = ip.family === 4 ? 'iptables' : 'ip6tables';
    if (this.missing.has(cmd)) return;
    const { accept, drop } = resolverRules(ip.address, ip.family);
    const fail = (what: string, r: CommandResult): Error =>
      new Error(`could not ${what} the firewall rule for the resolver address ${ip.address}: ${cmd}: ${r.stderr.trim()}`);
    const present: boolean[] = [];
    for (const rule of [...accept, drop]) {
      const check = await this.run(cmd, ['-w', '5', '-C', 'INPUT', ...rule]);
      if (isNotFound(check)) {
        this.missing.add(cmd);
        this.log?.warn({ cmd, address: ip.address }, `${cmd} not found; the resolver address is reachable from outside this node`);
        return;
      }
      present.push(check.code === 0);
    }
    if (present.every(Boolean)) return;
    // Reverse order at position 1: they end up in `accept` order.
    for (const [i, rule] of [...accept.entries()].reverse()) {
      if (present[i]) continue;
      const add = await this.run(cmd, ['-w', '5', '-I', 'INPUT', '1', ...rule]);
      if (add.code !== 0) throw fail('add', add);
    }
    if (!present[accept.length]) {
      const list = await this.run(cmd, ['-w', '5', '-S', 'INPUT']);
      if (list.code !== 0) throw fail('list', list);
      const rules = list.stdout.split('\n').filter((l) => l.startsWith('-A INPUT '));
      const ours = accept.map((r) => `-A INPUT ${r.map(quoteArg).join(' ')}`);
      const last = rules.reduce((at, line, i) => (ours.includes(line) || line.endsWith(` -j ${DNS_CHAIN}`) ? i + 1 : at), 0);
      const add = await this.run(cmd, ['-w', '5', '-I', 'INPUT', String(last + 1), ...drop]);
      if (add.code !== 0) throw fail('add', add);
    }
    this.log?.info({ cmd, address: ip.address }, 'firewall rules for the resolver address added');
  }

  async ensureResolverSources(address: string, sources: readonly ResolverSource[]): Promise<boolean> {
    const ip = canonicalIp(address);
    if (!ip) throw new TsoverlayError('INVALID_OPTION', `resolver address "${address}" is not an IP address`);
    const cmd = ip.family === 4 ? 'iptables' : 'ip6tables';
    if (this.missing.has(cmd)) return false;
    try {
      const wrote = await ensureResolverFilter(this.run, ip.address, sources);
      if (wrote) this.log?.info({ cmd, address: ip.address, sources: sources.length }, 'resolver source filter written: each network\'s queries from its own device only');
      return wrote;
    } catch (e) {
      if (!/ENOENT/.test(String(e))) throw e;
      this.missing.add(cmd);
      this.log?.warn({ cmd, address: ip.address }, `${cmd} or ${cmd}-restore not found; the resolver answers a query whatever device it came in on`);
      return false;
    }
  }

  async ensureVxlanMembers(port: number, members: readonly string[]): Promise<boolean> {
    const ips = members.map((m) => canonicalIp(m));
    const bad = members.filter((_, i) => !ips[i]);
    if (bad.length > 0) throw new TsoverlayError('INVALID_OPTION', `VXLAN member address "${bad.join('", "')}" is not an IP address`);
    const family = ips[0]?.family;
    if (family === undefined) throw new Error('refusing an empty VXLAN member list: it would drop every VXLAN packet');
    if (ips.some((ip) => ip?.family !== family)) throw new Error('VXLAN members of both address families in one list');
    const cmd = family === 4 ? 'iptables' : 'ip6tables';
    if (this.missing.has(cmd)) return false;
    const sorted = [...new Set(ips.map((ip) => ip?.address ?? ''))].sort();
    try {
      const wrote = await ensureOwnedChain(this.run, vxlanMemberChain(port, family, sorted));
      if (wrote) this.log?.info({ cmd, port, members: sorted }, 'VXLAN port filter written: packets from members only');
      return wrote;
    } catch (e) {
      if (!/ENOENT/.test(String(e))) throw e;
      this.missing.add(cmd);
      this.log?.warn({ cmd, port }, `${cmd} or ${cmd}-restore not found; the VXLAN port takes packets from any address`);
      return false;
    }
  }

  // teardown, for `tsoverlay cleanup` (iptables-teardown.ts)

  async listOwnedRules(): Promise<FirewallRule[]> {
    return (await listOwnedIptables(this.run)).rules;
  }

  async deleteRule(rule: FirewallRule): Promise<boolean> {
    const done = await deleteIptablesRule(this.run, rule);
    if (done) this.log?.info({ cmd: rule.command, table: rule.table, chain: rule.chain }, 'firewall rule deleted');
    return done;
  }

  async listOwnedChains(): Promise<FirewallChain[]> {
    return (await listOwnedIptables(this.run)).chains;
  }

  async deleteChain(chain: FirewallChain): Promise<boolean> {
    const done = await deleteIptablesChain(this.run, chain);
    if (done) this.log?.info({ cmd: chain.command, table: chain.table, chain: chain.chain }, 'firewall chain deleted');
    return done;
  }
}

const isNotFound = (r: CommandResult): boolean => r.code === -1 && /ENOENT/.test(r.stderr);
