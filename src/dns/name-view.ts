/**
 * What the resolver knows: the names of every endpoint in the cluster, by
 * network, and which networks a querier (by source address) belongs to.
 * Built by the plugin from the store (src/dns/name-index.ts); the answer
 * logic only reads it.
 */
export interface NameRecord {
  endpointId: string;
  /** Cluster network key. */
  network: string;
  containerId: string;
  /** Container name without Docker's leading "/". */
  name: string;
  /** `--network-alias` values of this endpoint (and Docker's short id alias, if given). */
  aliases: string[];
  /** Bare addresses. */
  ipv4?: string;
  ipv6?: string;
}

export interface NameView {
  /**
   * Cluster networks of the container whose interface has `sourceIp`
   * (all of its tsoverlay networks, not just the one the query came on);
   * [] when the address is not a tsoverlay endpoint.
   */
  networksOf(sourceIp: string): string[];
  /** Every name record of a network. */
  records(network: string): readonly NameRecord[];
  /** Docker network name of a cluster network (for NAME.NETWORK), if known. */
  networkName(network: string): string | undefined;
}
