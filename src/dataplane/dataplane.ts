/**
 * The kernel port. The core and the reconciler speak to the kernel only
 * through this interface; `NetlinkDataplane` implements it with rtnetlink,
 * `FakeDataplane` in memory for tests.
 *
 * Every mutating call is an *ensure*: it converges the kernel to the requested
 * state and succeeds if it is already there, so it can run twice.
 */

/** The underlay interface VXLAN traffic leaves through. */
export interface Underlay {
  ifname: string;
  ifindex: number;
  /** Bare IP used as the VXLAN `local` address and advertised to peers. */
  address: string;
  family: 4 | 6;
  mtu: number;
}

/** What every network has, whatever its layout: the VXLAN device. */
interface NetworkVxlan {
  vni: number;
  vxlan: string;
  /** UDP destination port of the VXLAN device. */
  port: number;
  /** Underlay address (bare IP) used as VXLAN `local`. */
  local: string;
  /** Underlay interface index (VXLAN `link`), so the device follows the underlay. */
  underlayIndex: number;
  mtu: number;
  /**
   * Multicast group (bare IP, same family as `local`) that broadcast, unknown
   * unicast and multicast frames are sent to, instead of (or besides) the
   * head-end replication entries. Absent: no group, BUM traffic goes only to
   * the all-zero-MAC FDB entries. Changing it recreates the VXLAN device
   * (and so drops its forwarding entries).
   */
  group?: string;
}

/**
 * The bridge layout: a Linux bridge with the VXLAN device enslaved to it;
 * endpoints are veth pairs whose host end is a port of the bridge.
 */
export interface BridgeNetworkDevices extends NetworkVxlan {
  layout: 'bridge';
  bridge: string;
  /**
   * Fixed MAC of the bridge. Without one a Linux bridge takes the lowest MAC
   * of its ports and changes it when that port leaves; containers that cached
   * the old MAC for an address of the bridge (the resolver's) would lose it
   * until their ARP entry expires.
   */
  bridgeMac?: string;
}

/**
 * The macvlan layout (the default for new networks): no bridge. The VXLAN
 * device alone, with the host's own macvlan (bridge mode) on it, where the
 * resolver's address and routes live as they do on a bridge; endpoints are
 * macvlans on the VXLAN device. (The VXLAN device cannot be a bridge port
 * then: one receive handler per device.)
 */
export interface MacvlanNetworkDevices extends NetworkVxlan {
  layout: 'macvlan';
  hostMacvlan: string;
  /** Fixed MAC of the host macvlan (see `BridgeNetworkDevices.bridgeMac`). */
  hostMacvlanMac?: string;
}

/** A network's devices, per layout. */
export type NetworkDevices = BridgeNetworkDevices | MacvlanNetworkDevices;
export type NetworkLayout = NetworkDevices['layout'];

/** What every endpoint has: the interface handed to Docker. */
interface EndpointContainerEnd {
  /** The interface Docker moves into the sandbox. */
  containerIf: string;
  mtu: number;
  /** MAC of the container end, lower-case colon form. */
  mac: string;
}

/** Bridge layout: a veth pair, host end on the bridge, container end handed to Docker. */
export interface VethEndpointDevices extends EndpointContainerEnd {
  layout: 'bridge';
  hostIf: string;
  bridge: string;
}

/** Macvlan layout: the container end alone, a macvlan in bridge mode on the network's VXLAN device. */
export interface MacvlanEndpointDevices extends EndpointContainerEnd {
  layout: 'macvlan';
  /** The network's VXLAN device (the macvlan's lower device). */
  vxlan: string;
}

/** An endpoint's devices, per layout. */
export type EndpointDevices = VethEndpointDevices | MacvlanEndpointDevices;

/** A link we own (name carries our prefix), as read back from the kernel. */
export interface ObservedLink {
  name: string;
  index: number;
  kind: string; // 'bridge' | 'vxlan' | 'veth' | other
  mtu: number;
  up: boolean;
  mac?: string;
  /** Name of the master device, if enslaved. */
  master?: string;
  /** Name of the lower device (IFLA_LINK) of a macvlan, if it is ours. */
  lower?: string;
  /** A macvlan's mode (linux/if_link.h MACVLAN_MODE_*; 4 = bridge). */
  macvlanMode?: number;
  /** A macvlan's broadcast cutoff, if not the kernel's default (1); -1: broadcasts delivered inline. */
  macvlanBcCutoff?: number;
  vxlan?: {
    vni: number;
    port: number;
    local?: string;
    link?: number;
    /** Multicast group, if the device has one. */
    group?: string;
    learning: boolean;
    proxy: boolean;
    /** Set (true) only when on: we create devices with both off. */
    l2miss?: boolean;
    l3miss?: boolean;
  };
  /**
   * Bare IPs configured on the link (IPv4 before IPv6, each numerically),
   * absent when it has none. The kernel's own IPv6 link-local addresses
   * (fe80::/10, added when a device comes up) are left out.
   */
  addresses?: string[];
}

/**
 * A route of a policy-routing table of ours: `dst` reached directly on the
 * device `dev` (IPv4: scope link; IPv6: the on-link equivalent), optionally
 * with a preferred source `src`. `dst` is a canonical CIDR without host bits
 * (`10.77.0.0/24`), `src` a bare canonical IP of the same family that must be
 * an address of this host.
 */
export interface TableRoute {
  dst: string;
  dev: string;
  src?: string;
}

/** A policy rule "from `source` (one address) lookup `table`" at `priority`. */
export interface SourceRule {
  /** Bare canonical IP. */
  source: string;
  table: number;
  priority: number;
}

/**
 * The all-zero MAC: an FDB entry for it is a head-end replication entry
 * (broadcast, multicast and unknown-unicast frames are copied to its dsts).
 */
export const FLOOD_MAC = '00:00:00:00:00:00';

/**
 * A static FDB entry on a VXLAN device: frames for `mac` are encapsulated to
 * the remote VTEP `dst`. The all-zero MAC `00:00:00:00:00:00` is the
 * head-end replication entry: broadcast and unknown-unicast frames are copied
 * to every `dst` it has (one entry per remote node).
 */
export interface FdbEntry {
  /** Lower-case colon form; unicast, or all zeros. */
  mac: string;
  /** Remote VTEP IP (bare, canonical, same family as the device's `local`). */
  dst: string;
}

/** A permanent neighbour entry on a VXLAN device, answered by its ARP/ND proxy. */
export interface NeighEntry {
  /** Bare IPv4 or IPv6 address, canonical form. */
  ip: string;
  /** Lower-case colon form, unicast. */
  mac: string;
}

/** What `listForwarding` reads back, sorted (FDB by MAC then dst, neighbours by IPv4 before IPv6, then address). */
export interface Forwarding {
  fdb: FdbEntry[];
  neigh: NeighEntry[];
}

/** An entry `addForwarding` could not add, and why. */
export type ForwardingFailure = ({ kind: 'fdb'; entry: FdbEntry } | { kind: 'neigh'; entry: NeighEntry }) & { error: Error };

export interface Dataplane {
  /**
   * Resolve `--advertise` (an IP or an interface name; undefined = the
   * interface holding the default route) to the underlay. Throws a
   * TsoverlayError('INVALID_OPTION') with a clear message if impossible.
   */
  resolveUnderlay(advertise: string | undefined): Promise<Underlay>;
  /** Every link whose name starts with the tsoverlay prefix. */
  listOwnedLinks(): Promise<ObservedLink[]>;
  /**
   * Ensure the network's devices exist with exactly these attributes, all
   * with the MTU and up. Bridge layout: the bridge and the VXLAN device
   * enslaved to it; macvlan layout: the VXLAN device on no bridge and the
   * host macvlan on it. Incompatible existing devices (other VNI/port/local,
   * another layout's device under a name) are recreated.
   * True if the VXLAN device was created by this call: it has no forwarding
   * entries yet.
   */
  ensureNetwork(spec: NetworkDevices): Promise<boolean>;
  /**
   * Bridge layout: ensure the veth pair exists; host end enslaved to the
   * bridge, up, with the MTU; container end with the MTU and MAC (left down;
   * Docker brings it up). If only the host end exists (the container end was
   * moved into a sandbox), only the host end is converged.
   * Macvlan layout: ensure the container end is a macvlan (bridge mode) on
   * the VXLAN device with the MTU and MAC, left down. Call it only while the
   * endpoint is not in a container: a missing device is created.
   */
  ensureEndpoint(spec: EndpointDevices): Promise<void>;
  /** Delete a link by name; true if it existed. Deleting one veth end removes both. */
  deleteLink(name: string): Promise<boolean>;
  /**
   * Static FDB entries with a dst and permanent neighbour entries on a VXLAN
   * device (only those; kernel-learned/self-generated entries, such as the
   * multicast group's default entry, are ignored). One FDB dump and one
   * neighbour dump, whatever the number of entries.
   *
   * For every forwarding call: a `vxlan` name that is not ours is
   * INVALID_OPTION; a missing device, or one that is not a VXLAN device, is
   * KERNEL_FAILURE (`<operation> <vxlan>: no such vxlan device` /
   * `…: not a vxlan device (kind <kind>)`).
   */
  listForwarding(vxlan: string): Promise<Forwarding>;
  /**
   * The same for every VXLAN device at once, by ifindex (`ObservedLink.index`),
   * in two dumps; devices without entries may be absent.
   */
  listAllForwarding(): Promise<Map<number, Forwarding>>;
  /**
   * Add many entries to one VXLAN device, each as `addFdb`/`addNeigh` would,
   * with one device lookup and the requests pipelined (a resync writes
   * thousands). Resolves with the entries that failed, each with its error;
   * rejects if the device is not there or the kernel does not answer.
   */
  addForwarding(vxlan: string, entries: Forwarding): Promise<ForwardingFailure[]>;
  /**
   * Ensure the FDB entry exists (idempotent). A unicast MAC has one dst:
   * adding it with another dst replaces the old one. The all-zero MAC
   * collects dsts: adding one keeps the others. The MAC must be unicast or all
   * zeros, the dst a unicast IP of the device's `local` family (INVALID_OPTION).
   */
  addFdb(vxlan: string, entry: FdbEntry): Promise<void>;
  /** Delete exactly this MAC+dst pair (other dsts of the all-zero MAC stay); false if absent. */
  deleteFdb(vxlan: string, entry: FdbEntry): Promise<boolean>;
  /** Ensure the permanent neighbour entry exists (idempotent; replaces the MAC of an existing IP). */
  addNeigh(vxlan: string, entry: NeighEntry): Promise<void>;
  /** Delete the neighbour entry of `entry.ip` if it is ours (permanent, with this MAC); false if absent. */
  deleteNeigh(vxlan: string, entry: NeighEntry): Promise<boolean>;

  // Local resolver (see netlink-routing.ts for why each piece exists).

  /**
   * Ensure `address`/32 (or /128) is on the network's host device, the
   * bridge or the host macvlan (`hostDevice` in layout.ts) (IPv4 with scope link,
   * IPv6 without DAD and without a prefix route). The same address may be on
   * several bridges. `bridge` must be ours (INVALID_OPTION); a missing device
   * or one that is neither a bridge nor a macvlan (a macvlan-mode network's
   * host device) is KERNEL_FAILURE
   * (`ensure bridge address <bridge>: no such bridge` / `…: not a bridge (kind <kind>)`).
   */
  ensureBridgeAddress(bridge: string, address: string): Promise<void>;
  /** Ensure `address` on the loopback device (the resolver binds to it before any bridge exists). */
  ensureLocalAddress(address: string): Promise<void>;
  /**
   * Ensure the policy rule "from `source` lookup `table`" at `priority`
   * (idempotent). A rule from the same source at the same priority that
   * looks up another table is replaced. `table` must not be one of the
   * kernel's (0, 253-255) and `priority` must come before the main table's
   * rule (1..32765): INVALID_OPTION.
   */
  ensureSourceRule(source: string, table: number, priority: number): Promise<void>;
  /** The routes of table `table` (IPv4 before IPv6, then by dst, then dev), for reconcile. */
  listTableRoutes(table: number): Promise<TableRoute[]>;
  /**
   * Ensure the route in `table` (replace semantics: one route per dst, a new
   * dev or src replaces the old). `dev` must be ours (INVALID_OPTION) and
   * exist (KERNEL_FAILURE `ensure table route <dev>: no such device`); `src`
   * must be an address of this host (else the kernel answers EINVAL).
   * Routes vanish when their device is deleted.
   */
  ensureTableRoute(table: number, route: TableRoute): Promise<void>;
  /** Delete the route to `dst` through `dev` from `table`; false if there was none (or no such device). */
  deleteTableRoute(table: number, route: { dst: string; dev: string }): Promise<boolean>;

  // Teardown (`tsoverlay cleanup`): read back and remove what the ensures above added.

  /**
   * The rules "from <one address> lookup `table`" (IPv4 and IPv6, any
   * priority), sorted by priority, then IPv4 before IPv6, then source.
   */
  listSourceRules(table: number): Promise<SourceRule[]>;
  /** Delete exactly this rule (source, table and priority); false if there is none. */
  deleteSourceRule(rule: SourceRule): Promise<boolean>;
  /**
   * The full-length (/32, /128) addresses on the loopback device, the kind
   * `ensureLocalAddress` adds (IPv4 before IPv6, each numerically).
   */
  listLocalAddresses(): Promise<string[]>;
  /** Delete `address`/32 (or /128) from the loopback device; false if it is not there. */
  deleteLocalAddress(address: string): Promise<boolean>;
  close(): Promise<void>;
}
