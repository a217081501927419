/**
 * The resolver's NameView, kept from the store: the published names of every
 * network this node takes part in (any node's containers; a container here
 * asks only in networks it is attached to), and this node's endpoints
 * by address (to know which container asks). Refreshed whenever the store
 * changes (the caller triggers refresh()): a change scoped to some networks
 * (src/cluster/store-change.ts) re-reads only theirs, anything else every
 * network this node has.
 */
import type { DnsNameRecord, EndpointRecord, NetworkRecord } from '../model.js';
import type { Participation } from '../cluster/local-endpoints.js';
import type { ClusterState } from '../store/cluster-state.js';
import type { NameRecord, NameView } from './name-view.js';

const bare = (cidr: string | undefined): string | undefined => cidr?.split('/')[0];

/** What the index holds of one network. */
interface NetworkNames {
  name: string | undefined;
  records: NameRecord[];
  /** This node's endpoints of the network by bare address. */
  local: Map<string, EndpointRecord>;
  /** This node's published names in the network by endpoint id. */
  localNames: Map<string, DnsNameRecord>;
}

export class NameIndex implements NameView {
  private byNetwork = new Map<string, NetworkNames>();
  /** Local endpoints by bare address, over every network (built from byNetwork). */
  private local = new Map<string, EndpointRecord>();

  constructor(
    private readonly state: ClusterState,
    private readonly node: string,
    /** The networks this node takes part in: only theirs have containers here that ask. */
    private readonly participation: Participation,
  ) {}

  /**
   * Read the names again: of these network keys only (a network among them
   * that this node no longer has, or that is gone, leaves the index), or of
   * every network this node has.
   */
  async refresh(scope?: ReadonlySet<string>): Promise<void> {
    const records = scope
      ? (await Promise.all([...scope].map((key) => this.state.getNetwork(key)))).filter((n): n is NetworkRecord => n !== undefined)
      : await this.state.listNetworks();
    const here = records.filter((net) => Object.values(net.aliases).includes(this.node) && this.participation.takesPart(net.id));
    // every network's reads at once: the store pipelines them
    const read = await Promise.all(
      here.map(async (net) => [net.id, this.networkNames(net, await this.state.listDnsNames(net.id), await this.state.listEndpoints(net.id))] as const),
    );
    const next = scope ? new Map(this.byNetwork) : new Map<string, NetworkNames>();
    if (scope) for (const key of scope) next.delete(key);
    for (const [key, names] of read) next.set(key, names);
    this.byNetwork = next;
    const local = new Map<string, EndpointRecord>();
    for (const n of next.values()) for (const [ip, ep] of n.local) local.set(ip, ep);
    this.local = local;
  }

  private networkNames(net: NetworkRecord, recs: readonly DnsNameRecord[], endpoints: readonly EndpointRecord[]): NetworkNames {
    const local = new Map<string, EndpointRecord>();
    const localNames = new Map<string, DnsNameRecord>();
    for (const r of recs) if (r.node === this.node) localNames.set(r.endpointId, r);
    for (const ep of endpoints) {
      if (ep.node !== this.node) continue;
      for (const ip of [bare(ep.ipv4), bare(ep.ipv6)]) if (ip) local.set(ip, ep);
    }
    const records = recs.map((r) => ({
      endpointId: r.endpointId,
      network: r.network,
      containerId: r.containerId,
      name: r.name,
      aliases: r.aliases,
      ...(r.ipv4 ? { ipv4: r.ipv4 } : {}),
      ...(r.ipv6 ? { ipv6: r.ipv6 } : {}),
    }));
    return { name: net.name, records, local, localNames };
  }

  networksOf(sourceIp: string): string[] {
    const ep = this.local.get(sourceIp);
    if (!ep) return [];
    const container = this.byNetwork.get(ep.networkId)?.localNames.get(ep.id)?.containerId;
    if (!container) return [ep.networkId];
    const nets = new Set<string>([ep.networkId]);
    for (const n of this.byNetwork.values()) for (const r of n.localNames.values()) if (r.containerId === container) nets.add(r.network);
    return [...nets];
  }

  records(network: string): readonly NameRecord[] {
    return this.byNetwork.get(network)?.records ?? [];
  }

  networkName(network: string): string | undefined {
    return this.byNetwork.get(network)?.name;
  }
}
