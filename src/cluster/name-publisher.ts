/**
 * Publishes the names of this node's containers for the resolvers of every
 * node: the engine that owns an endpoint knows its container's name and
 * aliases (the plugin API does not carry them), so this node reads them from
 * its engine — on `network connect` and container `rename` events, and in a
 * periodic full sync — and stores them next to the endpoint
 * (/dnsnames/<network>/<endpoint>). Disconnects remove them with the endpoint.
 */
import type { Log } from '../log.js';
import type { DockerEngine, EngineContainer } from '../engine/engine.js';
import { errorText } from '../errors.js';
import type { DnsNameRecord } from '../model.js';
import type { ClusterState } from '../store/cluster-state.js';
import { SerialLoop } from '../util/serial-loop.js';

export interface NamePublisherDeps {
  state: ClusterState;
  engine: DockerEngine;
  node: string;
  intervalMs: number;
  log: Log;
  /**
   * Asked before every pass: false while the cluster store is refused
   * (cluster/identity.ts), and the pass then changes nothing.
   */
  mayChange?: () => Promise<boolean>;
}

const bare = (cidr: string | undefined): string | undefined => cidr?.split('/')[0];

export class NamePublisher {
  private readonly loop: SerialLoop<{ published: number; failed: number }>;
  private readonly abort = new AbortController();

  constructor(private readonly deps: NamePublisherDeps) {
    this.loop = new SerialLoop(() => this.syncAll(), { intervalMs: deps.intervalMs, failed: (r) => r.failed > 0 });
  }

  start(): void {
    this.deps.engine.watchEvents(
      {
        onEvent: (e) => {
          if (e.type === 'network' && e.action === 'connect' && e.attributes['container']) {
            // The network's view answers at once; the container's (with
            // aliases) only once its start has finished.
            const container = e.attributes['container'];
            void this.publishFromNetwork(e.id, container).then(() => this.publishContainer(container));
          } else if (e.type === 'container' && e.action === 'rename') {
            void this.publishContainer(e.id);
          }
        },
        onConnected: () => this.loop.trigger(),
      },
      this.abort.signal,
    );
    void this.loop.start().catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop.stop();
  }

  runOnce(): Promise<{ published: number; failed: number }> {
    return this.loop.runOnce();
  }

  /** Publish the names of one container's endpoints on this node. */
  async publishContainer(containerId: string): Promise<number> {
    try {
      const c = await this.deps.engine.inspectContainer(containerId);
      return c ? await this.publish(c) : 0;
    } catch (e) {
      this.deps.log.warn({ err: e, error: errorText(e), container: containerId.slice(0, 12) }, 'publishing container names failed; the next sync retries');
      this.loop.trigger();
      return 0;
    }
  }

  /** Publish a container's name from the network inspect (no aliases yet). */
  private async publishFromNetwork(networkId: string, containerId: string): Promise<void> {
    try {
      const net = await this.deps.engine.inspectNetwork(networkId);
      const ep = net?.endpoints?.find((x) => x.containerId === containerId);
      if (!ep) return;
      const key = await this.deps.state.resolveNetwork(networkId);
      const known = key ? await this.deps.state.getDnsName(key, ep.endpointId) : undefined;
      await this.publish({ id: containerId, name: ep.name, attachments: [{ networkId, endpointId: ep.endpointId, aliases: known?.aliases ?? [] }] });
    } catch (e) {
      this.deps.log.debug({ err: e, container: containerId.slice(0, 12) }, 'early name publish failed; the container inspect follows');
    }
  }

  private async syncAll(): Promise<{ published: number; failed: number }> {
    if (this.deps.mayChange && !(await this.deps.mayChange())) return { published: 0, failed: 0 };
    let published = 0;
    let failed = 0;
    let containers: EngineContainer[];
    try {
      containers = await this.deps.engine.listContainers();
    } catch (e) {
      this.deps.log.debug({ err: e }, 'name sync skipped: engine unreachable');
      return { published, failed: 1 };
    }
    for (const c of containers) {
      try {
        // The list leaves out some aliases; inspect containers that are ours.
        const full = (await this.hasOurEndpoint(c)) ? await this.deps.engine.inspectContainer(c.id) : undefined;
        if (full) published += await this.publish(full);
      } catch (e) {
        failed++;
        this.deps.log.debug({ err: e, container: c.id.slice(0, 12) }, 'name sync of a container failed');
      }
    }
    return { published, failed };
  }

  private async hasOurEndpoint(c: EngineContainer): Promise<boolean> {
    for (const a of c.attachments) if (await this.deps.state.resolveNetwork(a.networkId)) return true;
    return false;
  }

  private async publish(c: EngineContainer): Promise<number> {
    const { state, node, log } = this.deps;
    let n = 0;
    for (const a of c.attachments) {
      const key = await state.resolveNetwork(a.networkId);
      if (!key) continue;
      const ep = await state.getEndpoint(key, a.endpointId);
      if (!ep || ep.node !== node) continue;
      const ipv4 = bare(ep.ipv4);
      const ipv6 = bare(ep.ipv6);
      const rec: DnsNameRecord = {
        endpointId: ep.id,
        network: key,
        node,
        containerId: c.id,
        name: c.name,
        aliases: [...new Set(a.aliases.filter((x) => x !== c.name))].sort(),
        ...(ipv4 ? { ipv4 } : {}),
        ...(ipv6 ? { ipv6 } : {}),
      };
      if (await state.putDnsName(rec)) {
        n++;
        log.debug({ endpoint: ep.id.slice(0, 12), name: c.name, aliases: rec.aliases }, 'names published');
      }
    }
    return n;
  }
}
