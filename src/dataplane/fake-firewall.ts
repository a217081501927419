/**
 * FakeFirewall: the `Firewall` port in memory, for tests.
 */
import type { Firewall } from './firewall.js';

/** For tests: counts calls, records resolver addresses, can fail. */
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
  async ensureBridgeForwarding(): Promise<void> {
    this.calls++;
    if (this.fail) throw this.fail;
  }
  async ensureResolverInput(address: string): Promise<void> {
    this.resolverInput.push(address);
    if (this.failResolverInput) throw this.failResolverInput;
  }
  async ensureVxlanMembers(port: number, members: readonly string[]): Promise<boolean> {
    if (this.failVxlanMembers) throw this.failVxlanMembers;
    if (members.length === 0) throw new Error('refusing an empty VXLAN member list');
    const next = [...members].sort();
    if (JSON.stringify(this.vxlanMembers.get(port)) === JSON.stringify(next)) return false;
    this.vxlanMembers.set(port, next);
    this.vxlanWrites++;
    return true;
  }
}
