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
   * from tsoverlay bridges and lo only (idempotent).
   */
  ensureResolverInput(address: string): Promise<void>;
  /**
   * Ensure UDP `port` (VXLAN) takes packets only from `members` (bare
   * addresses of one family, the node's own among them) and from the node
   * itself; everything else to that port is dropped before decapsulation.
   * Replaces the previous member list whole. Refuses an empty list: a
   * member list comes only from a successful read of membership.
   * Resolves true if anything was written. Idempotent.
   */
  ensureVxlanMembers(port: number, members: readonly string[]): Promise<boolean>;
}
