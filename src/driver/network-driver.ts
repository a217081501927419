/**
 * tsoverlay's NetworkDriver core: network and endpoint lifecycle. Docker's
 * calls arrive here as plain method calls (the Fastify edge converts them);
 * state goes to the cluster store, devices to the dataplane.
 *
 * Every call leaves either its whole effect or none: kernel failures roll the
 * store back, and deletes succeed for things that are already gone.
 */
import type { Logger } from 'pino';
import type { Dataplane, Underlay } from '../dataplane/dataplane.js';
import { endpointHostIf, hostDevice } from '../dataplane/layout.js';
import { containerIfName, hostIfName } from '../dataplane/names.js';
import { endpointDevices, networkDevices, networkLinks } from '../dataplane/record-devices.js';
import { TsoverlayError } from '../errors.js';
import { type EndpointRecord, type NetworkRecord, asEndpointId, type NetworkMode, networkLayout, storedLayout } from '../model.js';
import type { ClusterState } from '../store/cluster-state.js';
import { KeyedLock } from '../util/keyed-lock.js';
import type { LocalEndpoints } from '../cluster/local-endpoints.js';
import { type StoreChange, networkChange } from '../cluster/store-change.js';
import { usersElsewhere } from './network-users.js';
import { storeNetwork } from './store-network.js';
import { derivedDeviceNames, endpointAddress, endpointDeviceName, networkSubnets } from './inputs.js';
import { chooseMtu, endpointMac, normalizeMac, parseNetworkOptions } from './options.js';

export interface DriverConfig {
  node: string;
  vxlanPort: number;
  /** The node's resolver address: containers get an on-link route to it through their tsoverlay interface. */
  dnsAddress?: string;
  /** First VNI tried for automatic allocation (Docker's overlay starts at 4096). */
  vniStart: number;
  /** Layout of a network created without `-o tsoverlay.mode` (main passes `--default-mode`, macvlan unless set); absent: bridge. */
  defaultMode?: NetworkMode;
}

export interface IpamData {
  addressSpace: string;
  pool: string;
  gateway?: string;
  auxAddresses?: Record<string, string>;
}

export interface CreateNetworkInput {
  networkId: string;
  options: Record<string, unknown>;
  ipv4: IpamData[];
  ipv6: IpamData[];
}

export interface CreateEndpointInput {
  networkId: string;
  endpointId: string;
  address: string;
  addressIPv6: string;
  macAddress: string;
}

export interface StaticRoute {
  /** CIDR */
  destination: string;
  /** 0 = via nextHop, 1 = on-link (CONNECTED) */
  routeType: 0 | 1;
}

export interface JoinResult {
  srcName: string;
  dstPrefix: string;
  disableGatewayService: boolean;
  staticRoutes: StaticRoute[];
}

export interface DriverDeps {
  state: ClusterState;
  dataplane: Dataplane;
  underlay: Underlay;
  config: DriverConfig;
  log: Logger;
  /** The networks this node takes part in, kept by this driver's endpoint calls (src/cluster/local-endpoints.ts). */
  local: LocalEndpoints;
  /** After any change: replication.ts has this node's loops look again (an endpoint's: at its network only). */
  onChange?: (change?: StoreChange) => void;
  /**
   * Resolves when the reconcile pass over this change has ended (main.ts:
   * the reconciler's passOver). The first endpoint of this node in a
   * network waits for it, bounded by `peersWaitMs`, so that its container's
   * first packets find the peers programmed.
   */
  programPeers?: (change: StoreChange) => Promise<unknown>;
  peersWaitMs?: number;
  now?: () => Date;
}

const short = (id: string): string => id.slice(0, 12);

export class NetworkDriver {
  private readonly locks = new KeyedLock();
  /** Joined endpoints of this node by sandbox: one resolver route per container. */
  private readonly sandboxes = new Map<string, Set<string>>();

  constructor(private readonly deps: DriverDeps) {}

  /** Learn this node's endpoints: the networks it takes part in, and which sandboxes they joined (before serving Docker). */
  async init(): Promise<void> {
    for (const ep of await this.deps.local.load(this.deps.state, this.deps.log)) {
      if (ep.sandboxKey) this.joined(ep.sandboxKey).add(ep.id);
    }
  }

  /**
   * A network is identified cluster-wide by its first pool: the same subnet
   * created on another node (by a user or by replication) joins the same
   * overlay, with the same VNI, as another alias of the same record.
   */
  async createNetwork(input: CreateNetworkInput): Promise<void> {
    const { state, underlay, config } = this.deps;
    const opts = parseNetworkOptions(input.options);
    const ipv4 = networkSubnets(input.ipv4, 4);
    const ipv6 = networkSubnets(input.ipv6, 6);
    const first = ipv4[0] ?? ipv6[0];
    if (!first) {
      throw new TsoverlayError('NOT_OURS', 'the network has no subnet; create it with --ipam-driver tsoverlay');
    }
    const mtu = chooseMtu(opts.mtu, underlay, opts.ipv6);
    const key = first.poolId;
    const log = this.deps.log.child({ network: short(input.networkId) });
    await this.locks.run(key, async () => {
      for (const s of [...ipv4, ...ipv6]) {
        if (!(await state.getPool(s.poolId))) {
          throw new TsoverlayError('POOL_NOT_FOUND', `address pool ${s.pool} is not held by tsoverlay's IPAM; create the network with --ipam-driver tsoverlay`);
        }
      }
      let net = await state.addAlias(key, input.networkId, config.node, (n) => ({ ...n, deleted: false }));
      if (net) {
        if (net.mtu !== mtu && opts.mtu !== undefined) {
          log.warn({ vni: net.vni, mtu: net.mtu, requested: mtu }, 'network exists in the cluster with another MTU; keeping the cluster MTU');
        }
        if (opts.mode !== undefined && networkLayout(net) !== opts.mode) {
          log.warn({ vni: net.vni, mode: networkLayout(net), requested: opts.mode }, 'network exists in the cluster in another mode; keeping the cluster mode');
        }
        log.info({ vni: net.vni, key }, 'joined existing cluster network');
      } else {
        net = await storeNetwork({ state, node: config.node, vniStart: config.vniStart, now: this.deps.now }, key, input.networkId, opts.vni, {
          mtu,
          internal: opts.internal,
          ipv4,
          ipv6,
          options: opts.generic,
          ...(opts.multicast ? { multicast: opts.multicast } : {}),
          ...storedLayout(opts.mode ?? config.defaultMode ?? 'bridge'),
        });
        log.info({ vni: net.vni, mtu: net.mtu, internal: net.internal, mode: networkLayout(net), key }, 'network stored');
      }
      const devices = networkDevices(net, underlay, config.vxlanPort);
      try {
        await this.deps.dataplane.ensureNetwork(devices);
      } catch (e) {
        log.error({ err: e, vni: net.vni }, 'creating network devices failed; rolling back');
        await state.removeAlias(key, input.networkId, false).catch((re: unknown) => log.error({ err: re }, 'rollback of network record failed'));
        throw this.kernelError(e, `could not create the devices of network ${short(input.networkId)}`);
      }
      log.info({ vni: net.vni, ifname: hostDevice(devices) }, 'network ready');
    });
    this.changed();
  }

  /**
   * A user removed the network on this engine: it is marked removed for every
   * node (each removes its copy once no container uses it there), and this
   * node's devices go now.
   */
  async deleteNetwork(networkId: string): Promise<void> {
    const log = this.deps.log.child({ network: short(networkId) });
    const key = await this.deps.state.resolveNetwork(networkId);
    if (!key) {
      log.debug('delete of unknown network: nothing to do');
      return;
    }
    let inUse: TsoverlayError | undefined;
    await this.locks.run(key, async () => {
      const net = await this.deps.state.getNetwork(key);
      if (!net) return;
      const eps = await this.deps.state.listEndpoints(key);
      const users = net.deleted ? [] : await usersElsewhere(this.deps.state, eps, this.deps.config.node);
      if (users.length > 0) {
        // Docker removes it from this engine whatever we answer (it ignores
        // DeleteNetwork errors): the cluster keeps it, with its devices here,
        // and replication gives this engine a copy again.
        await this.deps.state.removeAlias(key, networkId, false);
        const where = users.map(([node, n]) => `${node} (${n})`).join(', ');
        log.warn({ vni: net.vni, nodes: users.map(([node]) => node) }, `network ${net.name ?? key} is in use on ${where}: kept in the cluster, and back on this node shortly`);
        inUse = new TsoverlayError(
          'NETWORK_IN_USE',
          `network ${net.name ?? key} is in use on ${where}: kept in the cluster and restored on this node; remove its containers on those nodes first`,
        );
        return;
      }
      const left = await this.deps.state.removeAlias(key, networkId, true);
      const stillHere = left !== undefined && Object.values(left.aliases).includes(this.deps.config.node);
      if (stillHere) return;
      const own = eps.filter((ep) => ep.node === this.deps.config.node);
      await this.deleteLinks(
        networkLinks(net, own),
        log,
        `network ${short(networkId)} removed, but some of its devices could not be deleted yet`,
      );
      log.info({ vni: net.vni, remaining: left ? Object.keys(left.aliases).length : 0 }, 'network removed on this node');
    });
    this.changed();
    if (inUse) throw inUse;
  }

  /** Returns the MAC to report back to Docker if Docker did not give one. */
  async createEndpoint(input: CreateEndpointInput): Promise<{ macAddress?: string }> {
    const { state, dataplane, config } = this.deps;
    const log = this.deps.log.child({ network: short(input.networkId), endpoint: short(input.endpointId) });
    const ipv4 = endpointAddress(input.address, 4);
    const ipv6 = endpointAddress(input.addressIPv6, 6);
    let mac: string | undefined;
    if (input.macAddress !== '') {
      mac = normalizeMac(input.macAddress);
      if (!mac) throw new TsoverlayError('INVALID_REQUEST', `"${input.macAddress}" is not a MAC address`);
    }
    const hostIf = endpointDeviceName(hostIfName, input.endpointId);
    const containerIf = endpointDeviceName(containerIfName, input.endpointId);
    const net = await this.network(input.networkId);
    const first = !this.deps.local.takesPart(net.id);
    const result = await this.locks.run(net.id, async () => {
      const rec: EndpointRecord = {
        id: asEndpointId(input.endpointId),
        networkId: net.id,
        node: config.node,
        ...(ipv4 ? { ipv4 } : {}),
        ...(ipv6 ? { ipv6 } : {}),
        mac: mac ?? endpointMac(ipv4, input.endpointId),
        hostIf,
        containerIf,
      };
      // taken part in from before the record exists: the pass it triggers reads the network's peers
      // (kept if the write fails: it may have landed; following a network too many costs only watches)
      this.deps.local.add(net.id, rec.id);
      await state.createEndpoint(rec);
      const devices = endpointDevices(rec, net);
      try {
        await dataplane.ensureEndpoint(devices);
      } catch (e) {
        log.error({ err: e }, 'creating endpoint interface failed; rolling back');
        const gone = await state.deleteEndpoint(net.id, rec.id).then(() => true, (re: unknown) => (log.error({ err: re }, 'rollback of endpoint record failed'), false));
        if (gone) this.deps.local.remove(net.id, rec.id);
        // a veth goes with either end; a macvlan endpoint is its container end alone
        for (const name of [hostIf, containerIf]) await dataplane.deleteLink(name).catch(() => false);
        throw this.kernelError(e, `could not create the interface of endpoint ${short(rec.id)}`);
      }
      log.info({ ip: rec.ipv4 ?? rec.ipv6, mac: rec.mac, ifname: endpointHostIf(devices) ?? containerIf }, 'endpoint created');
      return mac ? {} : { macAddress: rec.mac };
    });
    if (first && this.deps.programPeers) await this.peersProgrammed(this.deps.programPeers(networkChange(net.id)), log);
    else this.changed(networkChange(net.id));
    return result;
  }

  /**
   * This node's first endpoint in a network: until now nothing here read the
   * network's endpoints (local-endpoints.ts), so wait for the pass that
   * programs them, but never long: a slow store must not fail the container.
   */
  private async peersProgrammed(pass: Promise<unknown>, log: Logger): Promise<void> {
    const waitMs = this.deps.peersWaitMs ?? 2000;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(resolve, waitMs, 'late')));
    const t0 = performance.now();
    const r = await Promise.race([pass.then(() => 'done' as const, () => 'failed' as const), late]);
    clearTimeout(timer);
    if (r !== 'done') log.info({ ms: Math.round(performance.now() - t0), outcome: r }, 'first endpoint of this node in the network: its peers are programmed by a later pass');
  }

  async join(networkId: string, endpointId: string, sandboxKey = ''): Promise<JoinResult> {
    const net = await this.network(networkId);
    const ep = await this.deps.state.getEndpoint(net.id, endpointId);
    if (!ep) {
      throw new TsoverlayError('ENDPOINT_NOT_FOUND', `endpoint ${short(endpointId)} is not known to tsoverlay; recreate the container`);
    }
    // The resolver is reached through the first tsoverlay interface of a
    // container; a second identical route would make Docker's join fail.
    const staticRoutes: StaticRoute[] = [];
    const dns = this.deps.config.dnsAddress;
    if (sandboxKey !== '') {
      const here = this.joined(sandboxKey);
      if (dns && [...here].every((id) => id === ep.id)) {
        staticRoutes.push({ destination: `${dns}/${dns.includes(':') ? 128 : 32}`, routeType: 1 });
      }
      here.add(ep.id);
      await this.deps.state.setEndpointSandbox(net.id, ep.id, sandboxKey);
    }
    // No Gateway: like Docker's overlay, dockerd then gives the container its
    // way out through docker_gwbridge. Internal networks get none.
    return { srcName: ep.containerIf, dstPrefix: 'eth', disableGatewayService: net.internal, staticRoutes };
  }

  private joined(sandboxKey: string): Set<string> {
    let set = this.sandboxes.get(sandboxKey);
    if (!set) this.sandboxes.set(sandboxKey, (set = new Set()));
    return set;
  }

  private forgetJoin(endpointId: string): void {
    for (const [key, set] of this.sandboxes) {
      if (set.delete(endpointId) && set.size === 0) this.sandboxes.delete(key);
    }
  }

  async leave(networkId: string, endpointId: string): Promise<void> {
    this.forgetJoin(endpointId);
    // Docker moves the container end back to the host namespace; DeleteEndpoint removes it.
    this.deps.log.debug({ network: short(networkId), endpoint: short(endpointId) }, 'endpoint left');
  }

  async deleteEndpoint(networkId: string, endpointId: string): Promise<void> {
    const log = this.deps.log.child({ network: short(networkId), endpoint: short(endpointId) });
    const key = await this.deps.state.resolveNetwork(networkId);
    this.forgetJoin(endpointId);
    await this.locks.run(key ?? networkId, async () => {
      const ep = key ? await this.deps.state.getEndpoint(key, endpointId) : undefined;
      if (ep && key) await this.deps.state.deleteEndpoint(key, endpointId);
      if (key) this.deps.local.remove(key, endpointId); // removed through Docker: its record is gone now
      await this.deleteLinks(
        ep ? [ep.hostIf, ep.containerIf] : derivedDeviceNames(endpointId),
        log,
        `endpoint ${short(endpointId)} removed, but its interface could not be deleted yet`,
      );
      if (ep) log.info({ ifname: ep.hostIf }, 'endpoint removed');
    });
    this.changed(key ? networkChange(key) : undefined);
  }

  /**
   * Delete links, best effort across all of them; if any fails, log them all,
   * let the reconciler retry, and report the first.
   */
  private async deleteLinks(names: string[], log: Logger, what: string): Promise<void> {
    const failures: unknown[] = [];
    for (const name of names) {
      try {
        await this.deps.dataplane.deleteLink(name);
      } catch (e) {
        failures.push(e);
      }
    }
    if (failures.length === 0) return;
    log.error({ err: new AggregateError(failures), ifnames: names }, 'removing devices failed; the reconciler will retry');
    this.changed();
    throw this.kernelError(failures[0], what);
  }

  /** The cluster network behind an engine's network id. */
  private async network(networkId: string): Promise<NetworkRecord> {
    const key = await this.deps.state.resolveNetwork(networkId);
    const net = key ? await this.deps.state.getNetwork(key) : undefined;
    if (!net) throw this.unknownNetwork(networkId);
    return net;
  }

  private unknownNetwork(networkId: string): TsoverlayError {
    return new TsoverlayError(
      'NETWORK_NOT_FOUND',
      `network ${short(networkId)} is not known to tsoverlay (its state may have been lost); remove and recreate the network`,
    );
  }

  private kernelError(e: unknown, what: string): TsoverlayError {
    if (e instanceof TsoverlayError) return new TsoverlayError(e.code, `${what}: ${e.message}`, { cause: e });
    return new TsoverlayError('KERNEL_FAILURE', `${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }

  private changed(change?: StoreChange): void {
    this.deps.onChange?.(change);
  }
}
