/**
 * A simulated tsoverlay node for the scale-out benchmark (issue 17): the
 * plugin's own store stack — a ClusterState over a CachedKvStore with the
 * plugin's cache policy, membership through cluster/membership.ts, the IPAM
 * core (ipam/ipam.ts) and the network driver core (driver/network-driver.ts)
 * — on its own store session, with an in-memory kernel (FakeDataplane) in
 * place of netlink. It writes exactly what a real node writes for the same
 * Docker calls (test/component/sim-node.test.ts compares them) and programs
 * nothing: its VXLAN address (`address`) is fake and unreachable.
 *
 * What it does not run: the reconciler, replication to an engine, the name
 * index, the collector. With `follow`, it keeps the watches a real node keeps
 * (cluster/replication.ts `watchedPaths`) and re-reads a changed endpoint
 * folder of its networks, the store traffic of a real node's reconcile
 * without its kernel work.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import { registerNode } from '../../src/cluster/membership.js';
import { LocalEndpoints } from '../../src/cluster/local-endpoints.js';
import { watchedPaths } from '../../src/cluster/replication.js';
import { WatchSet } from '../../src/cluster/watch-set.js';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import { NetworkDriver } from '../../src/driver/network-driver.js';
import { GATEWAY_REQUEST, Ipam } from '../../src/ipam/ipam.js';
import { SETTINGS } from '../../src/config.js';
import { isTsoverlayError } from '../../src/errors.js';
import { VNI_START } from '../../src/main.js';
import type { NetworkMode, NodeRecord } from '../../src/model.js';
import { parseCidr } from '../../src/net/ip.js';
import { CachedKvStore } from '../../src/store/cached-kv-store.js';
import { ClusterState } from '../../src/store/cluster-state.js';
import type { KvStore } from '../../src/store/kv-store.js';
import { storeCachePolicy } from '../../src/store/paths.js';
import { packageVersion } from '../../src/version.js';

export interface SimNodeOptions {
  /** --node-name of the simulated node */
  name: string;
  /** its (fake) VXLAN address, advertised in its node record */
  address: string;
  vxlanPort?: number;
  /** the layout of networks it creates (the plugin's --default-mode; default: the plugin's default) */
  defaultMode?: NetworkMode;
  /** keep a real node's watches and re-read what changes (see above) */
  follow?: boolean;
  /** close the store at stop() (a session of its own; not a store shared in a test) */
  ownsStore?: boolean;
  log?: Logger;
}

/** A network as this node's engine would know it. */
export interface SimNetwork {
  /** the engine's network id (an alias of the cluster network) */
  engineId: string;
  poolId: string;
  subnet: string;
  gateway: string;
}

export interface SimEndpoint {
  net: SimNetwork;
  id: string;
  address: string;
}

const hex = (n: number): string => randomBytes(n).toString('hex');
const bare = (cidr: string): string => cidr.split('/')[0]!;

/** Docker's defaults for an IPv4 pool in tsoverlay's local address space. */
const LOCAL_SPACE = 'tsoverlay-local';

export class SimNode {
  readonly name: string;
  readonly state: ClusterState;
  readonly record: NodeRecord;
  private readonly ipam: Ipam;
  private readonly driver: NetworkDriver;
  private readonly log: Logger;
  private readonly networks = new Map<string, SimNetwork>();
  private watches: WatchSet | undefined;
  /** The networks this sim takes part in (has an endpoint in), kept by its driver as on a real node. */
  private readonly local: LocalEndpoints;
  private followRunning = false;
  private followAgain = false;
  /** store reads made after a watch fired (follow) */
  followReads = 0;

  private constructor(private readonly kv: KvStore, private readonly opts: SimNodeOptions) {
    this.name = opts.name;
    this.local = new LocalEndpoints(opts.name);
    this.log = opts.log ?? pino({ level: 'silent' });
    this.state = new ClusterState(new CachedKvStore(kv, storeCachePolicy), { log: this.log });
    const dp = new FakeDataplane({ underlay: { ifname: 'ul0', ifindex: 2, address: opts.address, family: 4, mtu: 1500 } });
    this.ipam = new Ipam({ state: this.state, config: { node: opts.name, defaultPool: parseCidr('10.128.0.0/9')!, defaultPoolSize: 24 } });
    this.driver = new NetworkDriver({
      state: this.state,
      dataplane: dp,
      underlay: dp.underlay,
      config: { node: opts.name, vxlanPort: opts.vxlanPort ?? 4789, vniStart: VNI_START, defaultMode: opts.defaultMode ?? (SETTINGS.defaultMode.default as NetworkMode) },
      log: this.log,
      local: this.local,
    });
    this.record = {
      node: opts.name,
      address: opts.address,
      vxlanPort: opts.vxlanPort ?? 4789,
      hostname: hostname(),
      version: packageVersion(),
      startedAt: new Date().toISOString(),
    };
  }

  /** Register on `kv` as a live node (the plugin's membership code); with `follow`, start watching. */
  static async start(kv: KvStore, opts: SimNodeOptions): Promise<SimNode> {
    const n = new SimNode(kv, opts);
    await n.state.init();
    await registerNode(n.state, n.record, n.log, { waitForOwnMs: 0 });
    if (opts.follow) await n.startFollowing();
    return n;
  }

  /**
   * Keep a real node's watches from now on (what `follow` does from the
   * start): a cluster of sims set up without them and then following saves
   * the N² re-reads of everyone watching everyone register and join.
   */
  async startFollowing(): Promise<void> {
    if (this.watches) return;
    this.watches = new WatchSet(this.state, () => void this.refollow());
    await this.refollow();
  }

  /**
   * What dockerd asks of the plugins when a network is created on (or
   * replicated to) this engine: RequestPool, RequestAddress for the
   * gateway, CreateNetwork. The first node creates the cluster network, the
   * others join it as another alias. When a step fails, what the earlier
   * ones took is given back (ReleaseAddress, ReleasePool), as dockerd does
   * when a network create fails, so the caller may try again.
   */
  async joinNetwork(subnet: string): Promise<SimNetwork> {
    const { poolId, pool } = await this.ipam.requestPool({ addressSpace: LOCAL_SPACE, pool: subnet, subPool: '', options: {}, v6: false });
    let gateway: string | undefined;
    const engineId = hex(32);
    try {
      gateway = await this.ipam.requestAddress({ poolId, address: '', options: { RequestAddressType: GATEWAY_REQUEST } });
      await this.driver.createNetwork({
        networkId: engineId,
        options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} },
        ipv4: [{ addressSpace: LOCAL_SPACE, pool, gateway }],
        ipv6: [],
      });
    } catch (e) {
      if (gateway) await this.ipam.releaseAddress(poolId, bare(gateway)).catch(() => undefined);
      await this.ipam.releasePool(poolId).catch(() => undefined);
      throw e;
    }
    const net = { engineId, poolId, subnet: pool, gateway };
    this.networks.set(engineId, net);
    await this.refollow();
    return net;
  }

  /**
   * Name a network this node created, as a real node's replicator does
   * (src/cluster/replicator.ts, "Names": the engine that created a network
   * knows its name, the plugin API does not carry it): the other nodes'
   * replicators then create it in their engines.
   */
  async nameNetwork(net: SimNetwork, name: string): Promise<void> {
    const key = await this.state.resolveNetwork(net.engineId);
    if (!key) throw new Error(`network ${net.engineId} is not stored`);
    await this.state.updateNetwork(key, (n) => (n.name ? undefined : { next: { ...n, name, driver: 'tsoverlay' } }));
  }

  /** A container attached: RequestAddress, CreateEndpoint, Join. */
  async attach(net: SimNetwork): Promise<SimEndpoint> {
    const cidr = await this.ipam.requestAddress({ poolId: net.poolId, address: '', options: {} });
    const id = hex(32);
    try {
      await this.driver.createEndpoint({ networkId: net.engineId, endpointId: id, address: cidr, addressIPv6: '', macAddress: '' });
      await this.driver.join(net.engineId, id, `/var/run/docker/netns/${hex(6)}`);
    } catch (e) {
      await this.ipam.releaseAddress(net.poolId, bare(cidr)).catch(() => undefined);
      throw e;
    }
    return { net, id, address: bare(cidr) };
  }

  /** The container gone: Leave, DeleteEndpoint, ReleaseAddress. */
  async detach(ep: SimEndpoint): Promise<void> {
    await this.driver.leave(ep.net.engineId, ep.id);
    await this.driver.deleteEndpoint(ep.net.engineId, ep.id);
    await this.ipam.releaseAddress(ep.net.poolId, ep.address);
  }

  /**
   * The network removed from this engine: DeleteNetwork, ReleaseAddress
   * (gateway), ReleasePool. Like dockerd, it goes on when the driver says
   * the network is still in use elsewhere (the alias is gone all the same).
   */
  async leaveNetwork(net: SimNetwork): Promise<void> {
    try {
      await this.driver.deleteNetwork(net.engineId);
    } catch (e) {
      if (!(isTsoverlayError(e) && e.code === 'NETWORK_IN_USE')) throw e;
    }
    await this.ipam.releaseAddress(net.poolId, bare(net.gateway));
    await this.ipam.releasePool(net.poolId);
    this.networks.delete(net.engineId);
    await this.refollow();
  }

  /** Stop watching; end the session if it is this node's own (its node record goes with it). */
  async stop(): Promise<void> {
    this.watches?.close();
    this.watches = undefined;
    if (this.opts.ownsStore) await this.kv.close();
  }

  /**
   * follow: the network list and records read again (cached: only what
   * changed is re-read), the watch set made what a real node watches, and
   * the endpoint lists of this node's networks read (again only what a
   * watch said changed). One pass at a time; a change during a pass runs
   * one more.
   */
  private async refollow(): Promise<void> {
    if (!this.watches) return;
    if (this.followRunning) {
      this.followAgain = true;
      return;
    }
    this.followRunning = true;
    try {
      do {
        this.followAgain = false;
        const networks = await this.state.listNetworks();
        await this.state.listNodes();
        this.watches?.sync(watchedPaths(networks, this.name, this.local));
        const mine = networks.filter((n) => Object.values(n.aliases).includes(this.name) && this.local.takesPart(n.id));
        await Promise.all(mine.map((n) => this.state.listEndpoints(n.id)));
        this.followReads++;
      } while (this.followAgain && this.watches);
    } catch (err) {
      this.log.debug({ err }, 'sim follow pass failed');
    } finally {
      this.followRunning = false;
    }
  }
}
