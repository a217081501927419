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

/** A network's devices: a Linux bridge with one VXLAN device enslaved to it. */
export interface NetworkDevices {
  vni: number;
  bridge: string;
  vxlan: string;
  /** UDP destination port of the VXLAN device. */
  port: number;
  /** Underlay address (bare IP) used as VXLAN `local`. */
  local: string;
  /** Underlay interface index (VXLAN `link`), so the device follows the underlay. */
  underlayIndex: number;
  mtu: number;
}

/** An endpoint's veth pair: host end on the bridge, container end handed to Docker. */
export interface EndpointDevices {
  hostIf: string;
  containerIf: string;
  bridge: string;
  mtu: number;
  /** MAC of the container end, lower-case colon form. */
  mac: string;
}

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
  vxlan?: {
    vni: number;
    port: number;
    local?: string;
    link?: number;
    learning: boolean;
    proxy: boolean;
  };
}

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
   * Ensure the bridge and the VXLAN device exist with exactly these attributes,
   * the VXLAN is enslaved to the bridge, both have the MTU and are up.
   * Incompatible existing devices (other VNI/port/local) are recreated.
   */
  ensureNetwork(spec: NetworkDevices): Promise<void>;
  /**
   * Ensure the veth pair exists; host end enslaved to the bridge, up, with the
   * MTU; container end with the MTU and MAC (left down; Docker brings it up).
   * If only the host end exists (the container end was moved into a sandbox),
   * only the host end is converged.
   */
  ensureEndpoint(spec: EndpointDevices): Promise<void>;
  /** Delete a link by name; true if it existed. Deleting one veth end removes both. */
  deleteLink(name: string): Promise<boolean>;
  close(): Promise<void>;
}
