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
  async ensureBridgeForwarding(): Promise<void> {
    this.calls++;
    if (this.fail) throw this.fail;
  }
  async ensureResolverInput(address: string): Promise<void> {
    this.resolverInput.push(address);
    if (this.failResolverInput) throw this.failResolverInput;
  }
}
