/**
 * Domain records shared by the core, the store and the reconciler. IDs are
 * branded strings so a network id cannot be passed where an endpoint id is
 * expected. Addresses in records are CIDR strings ("10.20.0.5/24").
 */
declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type NetworkId = Brand<string, 'NetworkId'>;
export type EndpointId = Brand<string, 'EndpointId'>;
export type PoolId = Brand<string, 'PoolId'>;
export type Vni = Brand<number, 'Vni'>;

export const asNetworkId = (s: string): NetworkId => s as NetworkId;
export const asEndpointId = (s: string): EndpointId => s as EndpointId;
export const asPoolId = (s: string): PoolId => s as PoolId;
export const asVni = (n: number): Vni => n as Vni;

export const VNI_MIN = 1;
export const VNI_MAX = 0xffffff;

/** One address family's IPAM data of a network, as Docker hands it over. */
export interface NetworkSubnet {
  poolId: PoolId;
  /** CIDR of the pool, e.g. 10.20.0.0/24 */
  pool: string;
  /** CIDR with the pool's mask, e.g. 10.20.0.1/24 */
  gateway?: string;
}

/**
 * How containers attach to a network (its layout): a macvlan on its VXLAN
 * device (the default for new networks, `--default-mode`), or a veth on its
 * bridge. `-o tsoverlay.mode=…` names it, hence "mode".
 */
export const NETWORK_MODES = ['bridge', 'macvlan'] as const;
export type NetworkMode = (typeof NETWORK_MODES)[number];

/**
 * A cluster network. Docker gives the same network a different id on every
 * engine, so the record is keyed by its first pool (one subnet = one overlay)
 * and maps each engine's network id to the node that created it there.
 */
export interface NetworkRecord {
  /** Cluster key: the pool id of the network's first subnet. */
  id: NetworkId;
  vni: Vni;
  /** Engine network id → node, for every engine that has this network. */
  aliases: Record<string, string>;
  /** Docker network name and driver name, learned from the engine that created it. */
  name?: string;
  driver?: string;
  /** Removed by a user on some node: every node removes its copy once unused. */
  deleted: boolean;
  /** BUM traffic goes to this multicast group instead of head-end replication. */
  multicast?: string;
  /**
   * The layout as stored (the on-disk field, kept as written since the
   * bridge layout came first): 'macvlan' = a macvlan on the VXLAN device, no
   * bridge; absent = a veth on the network's bridge. Read it with
   * `networkLayout`, write it with `storedLayout`; nothing else looks at it.
   * Fixed at creation (`-o tsoverlay.mode`, else the node's
   * `--default-mode`, macvlan unless set), the same on every node.
   */
  mode?: 'macvlan';
  /** MTU of the bridge, VXLAN device and every endpoint of this network. */
  mtu: number;
  internal: boolean;
  ipv4: NetworkSubnet[];
  ipv6: NetworkSubnet[];
  /** The driver options the user gave (`-o k=v`), kept for inspection and peers. */
  options: Record<string, string>;
  /** Node that created the record. */
  createdBy: string;
  createdAt: string;
}

/** The layout of a stored network (decodes `NetworkRecord.mode`). */
export const networkLayout = (net: Pick<NetworkRecord, 'mode'>): NetworkMode => net.mode ?? 'bridge';

/** The stored form of a layout, to spread into a new `NetworkRecord`. */
export const storedLayout = (layout: NetworkMode): Pick<NetworkRecord, 'mode'> => {
  switch (layout) {
    case 'macvlan':
      return { mode: 'macvlan' };
    case 'bridge':
      return {};
    default: {
      const never: never = layout;
      throw new Error(`unknown layout ${String(never)}`);
    }
  }
};

export type AddressSpace = 'tsoverlay-local' | 'tsoverlay-global';
export const LOCAL_SPACE: AddressSpace = 'tsoverlay-local';
export const GLOBAL_SPACE: AddressSpace = 'tsoverlay-global';
export const ADDRESS_SPACES: readonly AddressSpace[] = [LOCAL_SPACE, GLOBAL_SPACE];

export interface PoolRecord {
  id: PoolId;
  space: AddressSpace;
  family: 4 | 6;
  /** CIDR of the whole pool (`--subnet`). */
  pool: string;
  /** CIDR automatic addresses come from (`--ip-range`); absent = the whole pool. */
  subPool?: string;
  /** The user asked for this subnet (true) or IPAM chose it from the default range. */
  requested: boolean;
  /** Nodes whose engine holds this pool; the pool goes when the last one releases it. */
  users: string[];
  options: Record<string, string>;
  createdAt: string;
  /** Token of the request that created it: a retry after a lost reply recognises its own pool. */
  claim?: string;
}

export type AddressKind = 'gateway' | 'endpoint';
export interface AddressRecord {
  /** Bare IP. */
  ip: string;
  kind: AddressKind;
  node: string;
  /** Token of the request that claimed it: a retry after a lost reply recognises its own claim. */
  claim?: string;
}

export interface EndpointRecord {
  id: EndpointId;
  networkId: NetworkId;
  /** Node (plugin instance) that owns the endpoint's veth. */
  node: string;
  /** CIDR or absent. */
  ipv4?: string;
  ipv6?: string;
  mac: string;
  /** Host end of the veth pair (stays on the bridge). */
  hostIf: string;
  /** Container end before Docker moves it (Join's SrcName). */
  containerIf: string;
  /** The container's network namespace (Join's SandboxKey), once joined. */
  sandboxKey?: string;
}

/** Names of an endpoint's container, published by the node that owns it (for the resolver). */
export interface DnsNameRecord {
  endpointId: string;
  /** Cluster network key. */
  network: string;
  node: string;
  containerId: string;
  name: string;
  aliases: string[];
  ipv4?: string;
  ipv6?: string;
}

/** A live plugin instance (ephemeral in ZooKeeper). */
/** A network removed through Docker (an explicit, durable deletion). */
export interface TombstoneRecord {
  network: string;
  vni: number;
  deletedAt: string;
  /** The node whose Docker call removed the last alias. */
  by: string;
}

export interface NodeRecord {
  node: string;
  /** Underlay (VTEP) address, bare IP. */
  address: string;
  vxlanPort: number;
  hostname: string;
  version: string;
  startedAt: string;
}
