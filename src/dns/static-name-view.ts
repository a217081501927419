/**
 * A NameView over a fixed list of records: for tests and for tools that
 * already hold every record in memory. A querier's networks are the networks
 * of every record of the container that owns the source address.
 */
import { canonicalIp } from '../net/ip.js';
import type { NameRecord, NameView } from './name-view.js';

export class StaticNameView implements NameView {
  readonly #byNetwork = new Map<string, NameRecord[]>();
  readonly #containerByIp = new Map<string, string>();
  readonly #networksByContainer = new Map<string, Set<string>>();
  readonly #names: ReadonlyMap<string, string>;

  /** `networkNames`: cluster network key → Docker network name. */
  constructor(records: readonly NameRecord[], networkNames: Readonly<Record<string, string>> = {}) {
    this.#names = new Map(Object.entries(networkNames));
    for (const rec of records) {
      const list = this.#byNetwork.get(rec.network) ?? [];
      list.push(rec);
      this.#byNetwork.set(rec.network, list);
      const nets = this.#networksByContainer.get(rec.containerId) ?? new Set<string>();
      nets.add(rec.network);
      this.#networksByContainer.set(rec.containerId, nets);
      for (const ip of [rec.ipv4, rec.ipv6]) {
        if (ip !== undefined) this.#containerByIp.set(canonicalIp(ip) ?? ip, rec.containerId);
      }
    }
  }

  networksOf(sourceIp: string): string[] {
    const container = this.#containerByIp.get(canonicalIp(sourceIp) ?? sourceIp);
    return container === undefined ? [] : [...(this.#networksByContainer.get(container) ?? [])];
  }

  records(network: string): readonly NameRecord[] {
    return this.#byNetwork.get(network) ?? [];
  }

  networkName(network: string): string | undefined {
    return this.#names.get(network);
  }
}
