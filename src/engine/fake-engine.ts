/**
 * FakeDockerEngine: an in-memory engine for tests. It calls the plugin the
 * way dockerd does when a network is created or removed (IPAM first, then
 * the driver; releases in reverse), so replication can be tested end to end
 * without dockerd.
 */
import { randomBytes } from 'node:crypto';
import type { CreateNetworkSpec, DockerEngine, EngineContainer, EngineEvent, EngineNetwork } from './engine.js';
import { EngineError } from './engine.js';

export type PluginCall = (method: string, body: unknown) => Promise<{ status: number; json: Record<string, unknown> }>;

interface Held {
  net: EngineNetwork;
  poolIds: string[];
  gateways: Array<{ poolId: string; ip: string }>;
}

export class FakeDockerEngine implements DockerEngine {
  readonly networks = new Map<string, Held>();
  /** Containers as tests describe them. */
  readonly containers = new Map<string, EngineContainer>();
  private listeners: Array<(e: EngineEvent) => void> = [];
  plugin: PluginCall | undefined;

  async listNetworks(drivers: readonly string[]): Promise<EngineNetwork[]> {
    return [...this.networks.values()].map((h) => h.net).filter((n) => drivers.length === 0 || drivers.includes(n.driver));
  }

  async inspectNetwork(idOrName: string): Promise<EngineNetwork | undefined> {
    return this.find(idOrName)?.net;
  }

  async listContainers(): Promise<EngineContainer[]> {
    return [...this.containers.values()];
  }

  async inspectContainer(id: string): Promise<EngineContainer | undefined> {
    return this.containers.get(id);
  }

  /** What dockerd emits when a container joins a network. */
  emitConnect(containerId: string, networkId: string): void {
    this.emit({ type: 'network', action: 'connect', id: networkId, attributes: { container: containerId } });
  }

  async createNetwork(spec: CreateNetworkSpec): Promise<string> {
    const call = this.requirePlugin();
    if ([...this.networks.values()].some((h) => h.net.name === spec.name)) {
      throw new EngineError(`network with name ${spec.name} already exists`, 409);
    }
    const id = randomBytes(32).toString('hex');
    const held: Held = { net: { id, name: spec.name, driver: spec.driver, ipamDriver: spec.ipamDriver, subnets: [], options: spec.options, internal: spec.internal, ipv6: spec.ipv6, containers: 0 }, poolIds: [], gateways: [] };
    const ipv4: unknown[] = [];
    const ipv6: unknown[] = [];
    try {
      for (const s of spec.subnets) {
        const v6 = s.subnet.includes(':');
        const pool = await this.ok(call('IpamDriver.RequestPool', { AddressSpace: 'tsoverlay-local', Pool: s.subnet, SubPool: s.ipRange ?? '', Options: {}, V6: v6 }));
        const poolId = pool['PoolID'] as string;
        held.poolIds.push(poolId);
        const gw = await this.ok(
          call('IpamDriver.RequestAddress', { PoolID: poolId, Address: s.gateway ?? '', Options: { RequestAddressType: 'com.docker.network.gateway' } }),
        );
        const gateway = gw['Address'] as string;
        held.gateways.push({ poolId, ip: gateway.split('/')[0] ?? gateway });
        (v6 ? ipv6 : ipv4).push({ AddressSpace: 'tsoverlay-local', Pool: pool['Pool'], Gateway: gateway });
        held.net.subnets.push({ subnet: pool['Pool'] as string, gateway: gateway.split('/')[0] ?? gateway, ...(s.ipRange ? { ipRange: s.ipRange } : {}) });
      }
      await this.ok(
        call('NetworkDriver.CreateNetwork', {
          NetworkID: id,
          Options: { 'com.docker.network.enable_ipv6': spec.ipv6, 'com.docker.network.generic': spec.options, ...(spec.internal ? { 'com.docker.network.internal': true } : {}) },
          IPv4Data: ipv4,
          IPv6Data: ipv6,
        }),
      );
    } catch (e) {
      await this.release(held);
      throw e;
    }
    this.networks.set(id, held);
    this.emit({ type: 'network', action: 'create', id, attributes: { name: spec.name, type: spec.driver } });
    return id;
  }

  async removeNetwork(idOrName: string): Promise<boolean> {
    const held = this.find(idOrName);
    if (!held) return false;
    if (held.net.containers > 0) throw new EngineError(`network ${held.net.name} has active endpoints`, 403);
    await this.release(held);
    await this.requirePlugin()('NetworkDriver.DeleteNetwork', { NetworkID: held.net.id });
    this.networks.delete(held.net.id);
    this.emit({ type: 'network', action: 'destroy', id: held.net.id, attributes: { name: held.net.name, type: held.net.driver } });
    return true;
  }

  watchEvents(handlers: { onEvent: (e: EngineEvent) => void; onConnected?: () => void }, signal: AbortSignal): void {
    this.listeners.push(handlers.onEvent);
    signal.addEventListener('abort', () => {
      this.listeners = this.listeners.filter((l) => l !== handlers.onEvent);
    });
    queueMicrotask(() => handlers.onConnected?.());
  }

  private async release(held: Held): Promise<void> {
    const call = this.requirePlugin();
    for (const g of held.gateways) await call('IpamDriver.ReleaseAddress', { PoolID: g.poolId, Address: g.ip });
    for (const p of held.poolIds) await call('IpamDriver.ReleasePool', { PoolID: p });
  }

  private find(idOrName: string): Held | undefined {
    return this.networks.get(idOrName) ?? [...this.networks.values()].find((h) => h.net.name === idOrName);
  }

  private emit(e: EngineEvent): void {
    for (const l of this.listeners) l(e);
  }

  private requirePlugin(): PluginCall {
    if (!this.plugin) throw new Error('FakeDockerEngine: no plugin attached');
    return this.plugin;
  }

  private async ok(p: Promise<{ status: number; json: Record<string, unknown> }>): Promise<Record<string, unknown>> {
    const r = await p;
    if (r.status !== 200) throw new EngineError(String(r.json['Err'] ?? `plugin answered ${r.status}`), 500);
    return r.json;
  }
}
