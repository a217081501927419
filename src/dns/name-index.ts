/**
 * The resolver's NameView, kept from the store: the published names of every
 * network this node has (any node's containers), and this node's endpoints
 * by address (to know which container asks). Refreshed whenever the store
 * changes (the caller triggers refresh()).
 */
import type { DnsNameRecord, EndpointRecord } from '../model.js';
import type { ClusterState } from '../store/cluster-state.js';
import type { NameRecord, NameView } from './name-view.js';

const bare = (cidr: string | undefined): string | undefined => cidr?.split('/')[0];

export class NameIndex implements NameView {
  private byNetwork = new Map<string, NameRecord[]>();
  private names = new Map<string, string>();
  /** Local endpoints by bare address. */
  private local = new Map<string, EndpointRecord>();
  /** Local published names by endpoint id. */
  private localNames = new Map<string, DnsNameRecord>();

  constructor(
    private readonly state: ClusterState,
    private readonly node: string,
  ) {}

  async refresh(): Promise<void> {
    const byNetwork = new Map<string, NameRecord[]>();
    const names = new Map<string, string>();
    const local = new Map<string, EndpointRecord>();
    const localNames = new Map<string, DnsNameRecord>();
    const here = (await this.state.listNetworks()).filter((net) => Object.values(net.aliases).includes(this.node));
    // every network's reads at once: the store pipelines them
    const read = await Promise.all(
      here.map(async (net) => ({ net, recs: await this.state.listDnsNames(net.id), endpoints: await this.state.listEndpoints(net.id) })),
    );
    for (const { net, recs, endpoints } of read) {
      if (net.name) names.set(net.id, net.name);
      byNetwork.set(
        net.id,
        recs.map((r) => ({
          endpointId: r.endpointId,
          network: r.network,
          containerId: r.containerId,
          name: r.name,
          aliases: r.aliases,
          ...(r.ipv4 ? { ipv4: r.ipv4 } : {}),
          ...(r.ipv6 ? { ipv6: r.ipv6 } : {}),
        })),
      );
      for (const r of recs) if (r.node === this.node) localNames.set(r.endpointId, r);
      for (const ep of endpoints) {
        if (ep.node !== this.node) continue;
        for (const ip of [bare(ep.ipv4), bare(ep.ipv6)]) if (ip) local.set(ip, ep);
      }
    }
    this.byNetwork = byNetwork;
    this.names = names;
    this.local = local;
    this.localNames = localNames;
  }

  networksOf(sourceIp: string): string[] {
    const ep = this.local.get(sourceIp);
    if (!ep) return [];
    const container = this.localNames.get(ep.id)?.containerId;
    if (!container) return [ep.networkId];
    const nets = new Set<string>([ep.networkId]);
    for (const r of this.localNames.values()) if (r.containerId === container) nets.add(r.network);
    return [...nets];
  }

  records(network: string): readonly NameRecord[] {
    return this.byNetwork.get(network) ?? [];
  }

  networkName(network: string): string | undefined {
    return this.names.get(network);
  }
}
