/**
 * NetlinkDataplane: the kernel side of tsoverlay, spoken over rtnetlink
 * (the `netlink` package; no `ip`/`bridge` processes). A composition of the
 * concern modules, each behind the same request queue:
 * - links (netlink-links.ts, device primitives in netlink-devices.ts): the
 *   network's and endpoints' devices in either layout;
 * - forwarding (netlink-forwarding.ts): the VXLAN FDB and neighbour entries;
 * - routing (netlink-routing.ts): the resolver's addresses, rule and routes;
 * - teardown (netlink-teardown.ts): reading back and removing that rule and
 *   the loopback address, for `tsoverlay cleanup`;
 * - underlay discovery (netlink/underlay.ts).
 * The plumbing under them (the sockets and their queue, message codecs,
 * kernel constants) is in netlink/, which imports nothing from here.
 *
 * Netlink notes (see also shared/docs/multi-host-lab.md):
 * - All requests go through one queue per socket (netlink/lane.ts says
 *   why). Requests answered by a bare ACK may go together: `addForwarding`
 *   writes its entries many to a `sendmsg`, as one job of the queue
 *   (netlink/neigh-batch.ts).
 * - Link answers are read by hand (netlink/link-message.ts), not by the
 *   package's parser, which turns every attribute of every link into
 *   objects: a dump of a few thousand links was most of a restart's garbage.
 * - The package does not set NETLINK_GET_STRICT_CHK, so the kernel parses
 *   requests the legacy way and may ignore a dump's filters: every dump is
 *   filtered again by its reader (FDB and neighbour dumps:
 *   netlink-forwarding.ts; rules and routes: netlink-routing.ts).
 */
import { type Log, silentLog } from '../log.js';
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
import { NetlinkRequests } from './netlink/lane.js';
import { LinkQueries } from './netlink/link-queries.js';
import { resolveUnderlay } from './netlink/underlay.js';
import { NetlinkForwarding } from './netlink-forwarding.js';
import { NetlinkLinks } from './netlink-links.js';
import { NetlinkRouting } from './netlink-routing.js';
import { NetlinkTeardown } from './netlink-teardown.js';

export { DEFAULT_REQUEST_TIMEOUT_MS } from './netlink/lane.js';
export { VXLAN_TARGET_TTL_MS } from './netlink-forwarding.js';

export interface NetlinkDataplaneOptions {
  log?: Log | undefined;
  /** Per-request timeout (the package has none by default). Default 5000. */
  requestTimeoutMs?: number | undefined;
}

export class NetlinkDataplane implements Dataplane {
  private readonly requests: NetlinkRequests;
  private readonly queries: LinkQueries;
  private readonly links: NetlinkLinks;
  private readonly forwarding: NetlinkForwarding;
  private readonly routing: NetlinkRouting;
  private readonly teardown: NetlinkTeardown;

  /** No I/O here: the rtnetlink socket is opened by the first request. */
  constructor(options: NetlinkDataplaneOptions = {}) {
    const log = options.log ?? silentLog;
    this.requests = new NetlinkRequests(log, options.requestTimeoutMs);
    const exec = this.requests.exec;
    this.queries = new LinkQueries(exec);
    const findLink = (name: string) => this.queries.findLink(name);
    this.forwarding = new NetlinkForwarding({ exec, findLink });
    this.links = new NetlinkLinks({ exec, links: this.queries, log, forget: (name) => this.forwarding.forget(name) });
    this.routing = new NetlinkRouting({
      exec,
      findLink,
      linkNames: async (kind) => new Map((await this.queries.dumpLinks(kind)).map((l) => [l.index, l.name])),
      log,
    });
    this.teardown = new NetlinkTeardown({ exec, findLink, log });
  }

  resolveUnderlay(advertise: string | undefined): Promise<Underlay> {
    return resolveUnderlay(this.requests.exec, this.queries, advertise);
  }

  // ------------------------------------------------------ links (netlink-links.ts)

  listOwnedLinks(): Promise<ObservedLink[]> {
    return this.links.listOwnedLinks();
  }

  ensureNetwork(spec: NetworkDevices): Promise<boolean> {
    return this.links.ensureNetwork(spec);
  }

  ensureEndpoint(spec: EndpointDevices): Promise<void> {
    return this.links.ensureEndpoint(spec);
  }

  deleteLink(name: string): Promise<boolean> {
    return this.links.deleteLink(name);
  }

  // ------------------------------------------------ forwarding (netlink-forwarding.ts)

  addForwarding(vxlan: string, entries: Forwarding): Promise<ForwardingFailure[]> {
    return this.forwarding.addForwarding(vxlan, entries);
  }

  listAllForwarding(): Promise<Map<number, Forwarding>> {
    return this.forwarding.listAllForwarding();
  }

  listForwarding(vxlan: string): Promise<Forwarding> {
    return this.forwarding.listForwarding(vxlan);
  }

  addFdb(vxlan: string, entry: FdbEntry): Promise<void> {
    return this.forwarding.addFdb(vxlan, entry);
  }

  deleteFdb(vxlan: string, entry: FdbEntry): Promise<boolean> {
    return this.forwarding.deleteFdb(vxlan, entry);
  }

  addNeigh(vxlan: string, entry: NeighEntry): Promise<void> {
    return this.forwarding.addNeigh(vxlan, entry);
  }

  deleteNeigh(vxlan: string, entry: NeighEntry): Promise<boolean> {
    return this.forwarding.deleteNeigh(vxlan, entry);
  }

  // ------------------------------------------------- resolver (netlink-routing.ts)

  ensureBridgeAddress(bridge: string, address: string): Promise<void> {
    return this.routing.ensureBridgeAddress(bridge, address);
  }

  ensureLocalAddress(address: string): Promise<void> {
    return this.routing.ensureLocalAddress(address);
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

  // ------------------------------------------------ teardown (netlink-teardown.ts)

  listSourceRules(table: number): Promise<SourceRule[]> {
    return this.teardown.listSourceRules(table);
  }

  deleteSourceRule(rule: SourceRule): Promise<boolean> {
    return this.teardown.deleteSourceRule(rule);
  }

  listLocalAddresses(): Promise<string[]> {
    return this.teardown.listLocalAddresses();
  }

  deleteLocalAddress(address: string): Promise<boolean> {
    return this.teardown.deleteLocalAddress(address);
  }

  /** Close the sockets (after queued requests finish). A later call opens new ones. */
  close(): Promise<void> {
    return this.requests.close();
  }
}
