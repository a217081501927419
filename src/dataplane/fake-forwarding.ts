/**
 * The fake's forwarding entries (FDB and neighbours), on their VXLAN device:
 * a unicast MAC has one dst (a new one replaces it), the all-zero MAC
 * collects dsts; calls on a missing device are KERNEL_FAILURE.
 */
import { type FdbEntry, FLOOD_MAC, type Forwarding, type ForwardingFailure, type NeighEntry } from './dataplane.js';
import type { FakeKernel, FakeLink } from './fake-kernel.js';
import { canonicalIp } from './netlink/addr.js';
import { checkFdbEntry, checkForwardingDevice, checkNeighEntry, sortForwarding } from './spec.js';

/** A fake VXLAN device's entries, as the kernel would list them. */
const forwardingOf = (dev: FakeLink): Forwarding => {
  const fdb: FdbEntry[] = [];
  for (const [mac, dsts] of dev.fdb ?? []) for (const dst of dsts) fdb.push({ mac, dst });
  const neigh = [...(dev.neigh ?? [])].map(([ip, mac]) => ({ ip, mac }));
  return sortForwarding({ fdb, neigh });
};

const localFamily = (link: FakeLink): 4 | 6 | undefined =>
  link.vxlan?.local === undefined ? undefined : canonicalIp(link.vxlan.local)?.family;

export class FakeForwarding {
  constructor(private readonly k: FakeKernel) {}

  async addForwarding(vxlan: string, entries: Forwarding): Promise<ForwardingFailure[]> {
    this.k.vxlanDevice('add forwarding', vxlan);
    const failures: ForwardingFailure[] = [];
    for (const entry of entries.fdb) await this.addFdb(vxlan, entry).catch((error: Error) => failures.push({ kind: 'fdb', entry, error }));
    for (const entry of entries.neigh) await this.addNeigh(vxlan, entry).catch((error: Error) => failures.push({ kind: 'neigh', entry, error }));
    return failures;
  }

  async listAllForwarding(): Promise<Map<number, Forwarding>> {
    this.k.hit('listForwarding');
    const out = new Map<number, Forwarding>();
    for (const link of this.k.links.values()) if (link.kind === 'vxlan') out.set(link.index, forwardingOf(link));
    return out;
  }

  async listForwarding(vxlan: string): Promise<Forwarding> {
    this.k.hit('listForwarding');
    return forwardingOf(this.k.vxlanDevice('list forwarding', vxlan));
  }

  async addFdb(vxlan: string, input: FdbEntry): Promise<void> {
    this.k.calls.push(`addFdb ${vxlan} ${input.mac} ${input.dst}`);
    this.k.hit('addFdb');
    checkForwardingDevice(vxlan);
    checkFdbEntry(vxlan, input, undefined);
    const dev = this.k.vxlanDevice('add fdb', vxlan);
    const entry = checkFdbEntry(vxlan, input, localFamily(dev));
    dev.fdb ??= new Map();
    const dsts = dev.fdb.get(entry.mac) ?? new Set<string>();
    if (dsts.has(entry.dst) && (entry.mac === FLOOD_MAC || dsts.size === 1)) return;
    if (entry.mac !== FLOOD_MAC) {
      for (const old of dsts) this.k.calls.push(`removeFdb ${vxlan} ${entry.mac} ${old}`);
      dsts.clear(); // replace: a unicast MAC has one dst
    }
    dsts.add(entry.dst);
    dev.fdb.set(entry.mac, dsts);
    this.k.calls.push(`setFdb ${vxlan} ${entry.mac} ${entry.dst}`);
  }

  async deleteFdb(vxlan: string, input: FdbEntry): Promise<boolean> {
    this.k.calls.push(`deleteFdb ${vxlan} ${input.mac} ${input.dst}`);
    this.k.hit('deleteFdb');
    checkForwardingDevice(vxlan);
    const entry = checkFdbEntry(vxlan, input, undefined);
    const dev = this.k.vxlanDevice('delete fdb', vxlan);
    const dsts = dev.fdb?.get(entry.mac);
    if (!dsts?.delete(entry.dst)) return false;
    if (dsts.size === 0) dev.fdb?.delete(entry.mac);
    this.k.calls.push(`removeFdb ${vxlan} ${entry.mac} ${entry.dst}`);
    return true;
  }

  async addNeigh(vxlan: string, input: NeighEntry): Promise<void> {
    this.k.calls.push(`addNeigh ${vxlan} ${input.ip} ${input.mac}`);
    this.k.hit('addNeigh');
    checkForwardingDevice(vxlan);
    const { ip, mac } = checkNeighEntry(vxlan, input);
    const dev = this.k.vxlanDevice('add neighbour', vxlan);
    dev.neigh ??= new Map();
    if (dev.neigh.get(ip) === mac) return;
    dev.neigh.set(ip, mac);
    this.k.calls.push(`setNeigh ${vxlan} ${ip} ${mac}`);
  }

  async deleteNeigh(vxlan: string, input: NeighEntry): Promise<boolean> {
    this.k.calls.push(`deleteNeigh ${vxlan} ${input.ip} ${input.mac}`);
    this.k.hit('deleteNeigh');
    checkForwardingDevice(vxlan);
    const { ip, mac } = checkNeighEntry(vxlan, input);
    const dev = this.k.vxlanDevice('delete neighbour', vxlan);
    // Only while it still maps to this MAC (a reused IP's newer entry stays).
    if (dev.neigh?.get(ip) !== mac) return false;
    dev.neigh.delete(ip);
    this.k.calls.push(`removeNeigh ${vxlan} ${ip} ${mac}`);
    return true;
  }
}
