/**
 * The host firewall port: frames between ports of our bridges must pass, and
 * the node resolver's address answers containers only. `IptablesFirewall`
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
}
