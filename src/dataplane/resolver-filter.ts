/**
 * The resolver's source filter: a DNS query to the resolver address R is
 * taken only from the device of the network its source address belongs to.
 * Node's UDP and TCP sockets do not tell on which device a query arrived,
 * so the firewall does it, in a chain of ours in the filter table (iptables
 * for an IPv4 R, ip6tables for an IPv6 one), written whole from the desired
 * networks (iptables-chain.ts: one `iptables-restore --noflush`, and only
 * when it differs):
 *
 *   -I INPUT 1 -d R -i tsbr+ -m comment --comment "tsoverlay resolver" -j TSOVERLAY-DNS
 *   -A TSOVERLAY-DNS -s <subnet> -i <its host device> -j ACCEPT        (one per network here)
 *   -A TSOVERLAY-DNS -p udp -m udp --dport 53 -m comment --comment "tsoverlay: DNS from another network" -j DROP
 *   -A TSOVERLAY-DNS -p tcp -m tcp --dport 53 -m comment --comment "tsoverlay: DNS from another network" -j DROP
 *
 * The host device is the network's bridge or host macvlan (layout.ts; both
 * are named tsbr-<vni>, names.ts). A container that forges a source of
 * another network gets no answer (the reply would go to that network).
 * A forged source's packets to other ports return to INPUT, where the
 * resolver's DROP (iptables-firewall.ts) takes them.
 *
 * Nodes of earlier versions accepted every bridge with one rule,
 * `-A INPUT -d R -i tsbr+ … -j ACCEPT`; it is deleted once the chain and
 * the jump are in place, so no query is refused in between.
 */
import type { CommandRunner } from './command.js';
import type { ResolverSource } from './firewall.js';
import { ensureOwnedChain, type OwnedChain } from './iptables-chain.js';
import { canonicalIp } from './netlink/addr.js';

export const DNS_CHAIN = 'TSOVERLAY-DNS';
export const DNS_DROP_COMMENT = 'tsoverlay: DNS from another network';
export const RESOLVER_COMMENT = 'tsoverlay resolver';
export const BRIDGE_MATCH = 'tsbr+';

const hostPrefix = (family: 4 | 6): string => (family === 4 ? '/32' : '/128');

/** A subnet as `iptables -S` prints it: the address in canonical form; undefined if it is not one of `family`. */
export const canonicalSubnet = (subnet: string, family: 4 | 6): string | undefined => {
  const [addr = '', len] = subnet.split('/');
  const ip = canonicalIp(addr);
  if (!ip || ip.family !== family) return undefined;
  return `${ip.address}/${len ?? (family === 4 ? 32 : 128)}`;
};

/** The rule of earlier versions that let R take input from every bridge. */
export const legacyResolverAccept = (address: string, family: 4 | 6): string[] => [
  '-d', `${address}${hostPrefix(family)}`, '-i', BRIDGE_MATCH, '-m', 'comment', '--comment', RESOLVER_COMMENT, '-j', 'ACCEPT',
];

/**
 * The chain for resolver address `address` (bare, canonical, of `family`)
 * and these sources (sorted by device, then subnet; repeats once; those of
 * the other family left out).
 */
export const resolverFilterChain = (address: string, family: 4 | 6, sources: readonly ResolverSource[]): OwnedChain => {
  const accepts = new Map<string, string[]>();
  for (const s of sources) {
    const subnet = canonicalSubnet(s.subnet, family);
    if (subnet) accepts.set(`${s.device} ${subnet}`, ['-s', subnet, '-i', s.device, '-j', 'ACCEPT']);
  }
  const drop = (proto: 'udp' | 'tcp'): string[] => ['-p', proto, '-m', proto, '--dport', '53', '-m', 'comment', '--comment', DNS_DROP_COMMENT, '-j', 'DROP'];
  return {
    cmd: family === 4 ? 'iptables' : 'ip6tables',
    table: 'filter',
    chain: DNS_CHAIN,
    rules: [...[...accepts.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r), drop('udp'), drop('tcp')],
    jump: { from: 'INPUT', match: ['-d', `${address}${hostPrefix(family)}`, '-i', BRIDGE_MATCH, '-m', 'comment', '--comment', RESOLVER_COMMENT] },
  };
};

/**
 * Write the chain and the jump if they differ (ensureOwnedChain), then
 * delete the rule of earlier versions. Refuses a list without a source of
 * the address's family: that chain would refuse every container.
 * Resolves true if anything was written.
 */
export const ensureResolverFilter = async (run: CommandRunner, address: string, sources: readonly ResolverSource[]): Promise<boolean> => {
  const ip = canonicalIp(address);
  if (!ip) throw new Error(`resolver address "${address}" is not an IP address`);
  const spec = resolverFilterChain(ip.address, ip.family, sources);
  if (spec.rules.length <= 2) throw new Error('refusing an empty resolver source list: it would refuse every container\'s query');
  let wrote = await ensureOwnedChain(run, spec);
  const del = await run(spec.cmd, ['-w', '5', '-t', 'filter', '-D', 'INPUT', ...legacyResolverAccept(ip.address, ip.family)]);
  if (del.code === 0) wrote = true;
  else if (del.code !== 1) throw new Error(`could not delete the resolver's unfiltered input rule: ${spec.cmd}: ${del.stderr.trim()}`);
  return wrote;
};
