/**
 * FakeDataplane: an in-memory kernel with the semantics of `NetlinkDataplane`
 * (the contract suite in test/contract/dataplane/ runs the same
 * assertions against both). Ensures are idempotent, incompatible devices are
 * recreated, a VNI+port already used by another VXLAN device is a
 * KERNEL_CONFLICT, a VXLAN MTU above the underlay's allows is a
 * KERNEL_FAILURE (EINVAL), deleting one veth end removes both, deleting a
 * bridge releases its ports, deleting a VXLAN device deletes the macvlans
 * on it (in sandboxes too). Forwarding entries (FDB, neighbours) live on
 * their VXLAN device: deleting or recreating the device drops them; a
 * unicast MAC has one dst (a new one replaces it), the all-zero MAC collects
 * dsts; calls on a missing device are KERNEL_FAILURE.
 * Resolver routing: addresses live on their device (and vanish with it), one
 * rule per source+priority, table routes keyed by dst (a new dev/src replaces
 * the route; routes vanish with their device; `src` must be an address of the
 * host, the device up: else EINVAL / ENETDOWN as the kernel answers).
 *
 * For assertions:
 * - `links`: every visible device by name (`masterIndex` points at the bridge).
 * - `calls`: the mutating calls, in order — API calls
 *   (`ensureNetwork <bridge>`, `ensureEndpoint <hostIf>`, `deleteLink <name>`,
 *   `addFdb|deleteFdb <vxlan> <mac> <dst>`, `addNeigh|deleteNeigh <vxlan> <ip> <mac>`)
 *   and the kernel changes they made (`createLink <name>`,
 *   `setLink <name> <what>`, `removeLink <name>`, `setFdb|removeFdb <vxlan> <mac> <dst>`,
 *   `setNeigh|removeNeigh <vxlan> <ip> <mac>`, `addAddress <dev> <ip>`,
 *   `addRule|removeRule <source> <table> <priority>`, `removeAddress lo <ip>`,
 *   `setRoute <table> <dst> <dev> [src]`, `removeRoute <table> <dst> <dev>`;
 *   the resolver API calls log as `ensureBridgeAddress <bridge> <ip>`,
 *   `ensureSourceRule <source> <table> <priority>`,
 *   `ensureTableRoute|deleteTableRoute <table> <dst> <dev>`). `changes()` returns only the
 *   latter, so "a second ensure changed nothing" is
 *   `t.same(fake.changes(), before)`.
 * - `rules`, `tables`: the policy rules and table routes (see `FakeRule`).
 * - `failNext(point, error)`: the next call of that method (or kernel step)
 *   throws `error`.
 */
import type {
  Dataplane,
  EndpointDevices,
  FdbEntry,
  Forwarding,
  ForwardingFailure,
  NeighEntry,
  NetworkDevices,
  ObservedLink,
  SourceRule,
  TableRoute,
  Underlay,
} from './dataplane.js';
import { FakeForwarding } from './fake-forwarding.js';
import { FakeKernel, type FakeDataplaneOptions } from './fake-kernel.js';
import { FakeLinks } from './fake-links.js';
import { FakeRouting } from './fake-routing.js';

export { DEFAULT_FAKE_UNDERLAY, type FakeDataplaneOptions, type FakeFailPoint, type FakeLink, type FakeRule } from './fake-kernel.js';

/**
 * The fake kernel's state and helpers (FakeKernel) with the port's methods,
 * each from its concern module: links (fake-links.ts), forwarding
 * (fake-forwarding.ts), resolver routing (fake-routing.ts).
 */
export class FakeDataplane extends FakeKernel implements Dataplane {
  private readonly linkOps: FakeLinks;
  private readonly forwarding: FakeForwarding;
  private readonly routing: FakeRouting;

  constructor(options: FakeDataplaneOptions = {}) {
    super(options);
    this.linkOps = new FakeLinks(this);
    this.forwarding = new FakeForwarding(this);
    this.routing = new FakeRouting(this);
  }

  resolveUnderlay(advertise: string | undefined): Promise<Underlay> {
    return this.linkOps.resolveUnderlay(advertise);
  }

  listOwnedLinks(): Promise<ObservedLink[]> {
    return this.linkOps.listOwnedLinks();
  }

  ensureNetwork(input: NetworkDevices): Promise<boolean> {
    return this.linkOps.ensureNetwork(input);
  }

  ensureEndpoint(input: EndpointDevices): Promise<void> {
    return this.linkOps.ensureEndpoint(input);
  }

  deleteLink(name: string): Promise<boolean> {
    return this.linkOps.deleteLink(name);
  }

  addForwarding(vxlan: string, entries: Forwarding): Promise<ForwardingFailure[]> {
    return this.forwarding.addForwarding(vxlan, entries);
  }

  listAllForwarding(): Promise<Map<number, Forwarding>> {
    return this.forwarding.listAllForwarding();
  }

  listForwarding(vxlan: string): Promise<Forwarding> {
    return this.forwarding.listForwarding(vxlan);
  }

  addFdb(vxlan: string, input: FdbEntry): Promise<void> {
    return this.forwarding.addFdb(vxlan, input);
  }

  deleteFdb(vxlan: string, input: FdbEntry): Promise<boolean> {
    return this.forwarding.deleteFdb(vxlan, input);
  }

  addNeigh(vxlan: string, input: NeighEntry): Promise<void> {
    return this.forwarding.addNeigh(vxlan, input);
  }

  deleteNeigh(vxlan: string, input: NeighEntry): Promise<boolean> {
    return this.forwarding.deleteNeigh(vxlan, input);
  }

  ensureLocalAddress(address: string): Promise<void> {
    return this.routing.ensureLocalAddress(address);
  }

  ensureBridgeAddress(bridge: string, address: string): Promise<void> {
    return this.routing.ensureBridgeAddress(bridge, address);
  }

  ensureSourceRule(source: string, table: number, priority: number): Promise<void> {
    return this.routing.ensureSourceRule(source, table, priority);
  }

  listTableRoutes(table: number): Promise<TableRoute[]> {
    return this.routing.listTableRoutes(table);
  }

  ensureTableRoute(table: number, route: TableRoute): Promise<void> {
    return this.routing.ensureTableRoute(table, route);
  }

  deleteTableRoute(table: number, route: { dst: string; dev: string }): Promise<boolean> {
    return this.routing.deleteTableRoute(table, route);
  }

  listSourceRules(table: number): Promise<SourceRule[]> {
    return this.routing.listSourceRules(table);
  }

  deleteSourceRule(rule: SourceRule): Promise<boolean> {
    return this.routing.deleteSourceRule(rule);
  }

  listLocalAddresses(): Promise<string[]> {
    return this.routing.listLocalAddresses();
  }

  deleteLocalAddress(address: string): Promise<boolean> {
    return this.routing.deleteLocalAddress(address);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
