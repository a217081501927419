/**
 * The host firewall port: frames between ports of our bridges must pass, and
 * the node resolver's address answers containers only, and the VXLAN port
 * takes packets from the cluster's members only. `IptablesFirewall`
 * (iptables-firewall.ts, which says what the rules are and why) implements
 * it; `FakeFirewall` (fake-firewall.ts) records the calls for tests.
 */
export interface Firewall {
  /** Ensure the ACCEPT rule exists (idempotent). */
  ensureBridgeForwarding(): Promise<void>;
  /**
   * Ensure the resolver address `address` (bare IPv4 or IPv6) accepts input
   * from lo and, through the source filter (`ensureResolverSources`),
   * tsoverlay bridges only (idempotent).
   */
  ensureResolverInput(address: string): Promise<void>;
  /**
   * Ensure a DNS query to `address` from a tsoverlay bridge is taken only
   * if its source is in the subnet of the network whose device it came in
   * on (`sources`, those of the address's family; resolver-filter.ts).
   * Replaces the previous list whole, then deletes the unfiltered rule of
   * earlier versions. Refuses a list without a source of that family.
   * Resolves true if anything was written. Idempotent.
   */
  ensureResolverSources(address: string, sources: readonly ResolverSource[]): Promise<boolean>;
  /**
   * Ensure UDP `port` (VXLAN) takes packets only from `members` (bare
   * addresses of one family, the node's own among them) and from the node
   * itself; everything else to that port is dropped before decapsulation.
   * Replaces the previous member list whole. Refuses an empty list: a
   * member list comes only from a successful read of membership.
   * Resolves true if anything was written. Idempotent.
   */
  ensureVxlanMembers(port: number, members: readonly string[]): Promise<boolean>;

  /**
   * Every rule tsoverlay added outside its own chains: a comment starting
   * with "tsoverlay", or a jump into one of its chains (filter and raw
   * tables, iptables and ip6tables; none where a command is missing).
   */
  listOwnedRules(): Promise<FirewallRule[]>;
  /** Delete exactly this rule (one instance); false if there is none. */
  deleteRule(rule: FirewallRule): Promise<boolean>;
  /** The chains of its own (`TSOVERLAY-…`). */
  listOwnedChains(): Promise<FirewallChain[]>;
  /** Flush and delete a chain of its own (delete the jumps into it first); false if there is none. */
  deleteChain(chain: FirewallChain): Promise<boolean>;
}

/** A network's subnet and the host device its containers reach the resolver through. */
export interface ResolverSource {
  /** CIDR (`10.61.0.0/24`). */
  subnet: string;
  /** The network's bridge or host macvlan (`tsbr-…`). */
  device: string;
}

/** A rule as `<command> -t <table> -S` prints it: `-A <chain> <args…>`. */
export interface FirewallRule {
  command: 'iptables' | 'ip6tables';
  table: 'filter' | 'raw';
  chain: string;
  /** Match and target, unquoted (`['-i', 'tsbr+', '-m', 'comment', '--comment', 'tsoverlay bridges', '-j', 'ACCEPT']`). */
  args: string[];
}

export interface FirewallChain {
  command: 'iptables' | 'ip6tables';
  table: 'filter' | 'raw';
  chain: string;
}

/** How `iptables -S` prints a rule (arguments with spaces quoted). */
export const formatRule = (r: FirewallRule): string =>
  `${r.command} -t ${r.table} -A ${r.chain} ${r.args.map((a) => (/[\s"]/.test(a) ? `"${a.replace(/(["\\])/g, '\\$1')}"` : a)).join(' ')}`;
