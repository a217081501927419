/**
 * tsoverlay's NetworkDriver core: network and endpoint lifecycle. Docker's
 * calls arrive here as plain method calls (the Fastify edge converts them);
 * state goes to the cluster store, devices to the dataplane.
 *
 * Every call leaves either its whole effect or none: kernel failures roll the
 * store back, and deletes succeed for things that are already gone.
 */
import type { Logger } from 'pino';
import type { Dataplane, EndpointDevices, NetworkDevices, Underlay } from '../dataplane/dataplane.js';
import { bridgeName, containerIfName, hostIfName, vxlanName } from '../dataplane/names.js';
import { TsoverlayError, isTsoverlayError } from '../errors.js';
import { parseCidr, parseIpWithPrefix } from '../ipam/cidr.js';
import { poolIdOf } from '../ipam/ipam.js';
import {
  ADDRESS_SPACES,
  type EndpointRecord,
  type NetworkRecord,
  type NetworkSubnet,
  VNI_MAX,
  asEndpointId,
  asNetworkId,
  asPoolId,
  asVni,
} from '../model.js';
import type { ClusterState } from '../store/cluster-state.js';
import { KeyedLock } from '../util/keyed-lock.js';
import { chooseMtu, endpointMac, normalizeMac, parseNetworkOptions } from './options.js';

export interface DriverConfig {
  node: string;
  vxlanPort: number;
  /** First VNI tried for automatic allocation (Docker's overlay starts at 4096). */
  vniStart: number;
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

export interface JoinResult {
  srcName: string;
  dstPrefix: string;
  disableGatewayService: boolean;
}

export interface DriverDeps {
  state: ClusterState;
  dataplane: Dataplane;
  underlay: Underlay;
  config: DriverConfig;
  log: Logger;
  /** Called after any change so the reconciler re-checks. */
  onChange?: () => void;
  now?: () => Date;
}

export const networkDevices = (net: NetworkRecord, underlay: Underlay, port: number): NetworkDevices => ({
  vni: net.vni,
  bridge: bridgeName(net.vni),
  vxlan: vxlanName(net.vni),
  port,
  local: underlay.address,
  underlayIndex: underlay.ifindex,
  mtu: net.mtu,
});

export const endpointDevices = (ep: EndpointRecord, net: NetworkRecord): EndpointDevices => ({
  hostIf: ep.hostIf,
  containerIf: ep.containerIf,
  bridge: bridgeName(net.vni),
  mtu: net.mtu,
  mac: ep.mac,
});

const short = (id: string): string => id.slice(0, 12);

export class NetworkDriver {
  private readonly locks = new KeyedLock();

  constructor(private readonly deps: DriverDeps) {}

  capabilities(): { scope: 'local'; connectivityScope: 'global' } {
    return { scope: 'local', connectivityScope: 'global' };
  }

  async createNetwork(input: CreateNetworkInput): Promise<void> {
    const { state, underlay, config } = this.deps;
    const opts = parseNetworkOptions(input.options);
    const ipv4 = this.checkIpamData(input.ipv4, 4);
    const ipv6 = this.checkIpamData(input.ipv6, 6);
    if (ipv4.length === 0 && ipv6.length === 0) {
      throw new TsoverlayError('NOT_OURS', 'the network has no subnet; create it with --ipam-driver tsoverlay');
    }
    const mtu = chooseMtu(opts.mtu, underlay, opts.ipv6);
    const log = this.deps.log.child({ network: short(input.networkId) });
    await this.locks.run(input.networkId, async () => {
      for (const s of [...ipv4, ...ipv6]) {
        if (!(await state.getPool(s.poolId))) {
          throw new TsoverlayError('POOL_NOT_FOUND', `address pool ${s.pool} is not held by tsoverlay's IPAM; create the network with --ipam-driver tsoverlay`);
        }
      }
      let net = await state.getNetwork(input.networkId);
      if (!net) {
        net = await this.storeNetwork(input.networkId, opts.vni, {
          mtu,
          internal: opts.internal,
          ipv4,
          ipv6,
          options: opts.generic,
        });
        log.info({ vni: net.vni, mtu: net.mtu, internal: net.internal }, 'network stored');
      }
      try {
        await this.deps.dataplane.ensureNetwork(networkDevices(net, underlay, config.vxlanPort));
      } catch (e) {
        log.error({ err: e, vni: net.vni }, 'creating network devices failed; rolling back');
        await state.deleteNetwork(net.id).catch((re: unknown) => log.error({ err: re }, 'rollback of network record failed'));
        throw this.kernelError(e, `could not create the devices of network ${short(net.id)}`);
      }
      log.info({ vni: net.vni, bridge: bridgeName(net.vni) }, 'network ready');
    });
    this.changed();
  }

  async deleteNetwork(networkId: string): Promise<void> {
    const log = this.deps.log.child({ network: short(networkId) });
    await this.locks.run(networkId, async () => {
      const net = await this.deps.state.getNetwork(networkId);
      if (!net) {
        log.debug('delete of unknown network: nothing to do');
        return;
      }
      const eps = await this.deps.state.listEndpoints(networkId);
      await this.deps.state.deleteNetwork(networkId);
      const failures: unknown[] = [];
      const names = [
        ...eps.filter((ep) => ep.node === this.deps.config.node).map((ep) => ep.hostIf),
        vxlanName(net.vni),
        bridgeName(net.vni),
      ];
      for (const name of names) {
        try {
          await this.deps.dataplane.deleteLink(name);
        } catch (e) {
          failures.push(e);
        }
      }
      if (failures.length > 0) {
        log.error({ err: new AggregateError(failures), vni: net.vni }, 'removing network devices failed; the reconciler will retry');
        this.changed();
        throw this.kernelError(failures[0], `network ${short(networkId)} removed, but some of its devices could not be deleted yet`);
      }
      log.info({ vni: net.vni }, 'network removed');
    });
    this.changed();
  }

  /** Returns the MAC to report back to Docker if Docker did not give one. */
  async createEndpoint(input: CreateEndpointInput): Promise<{ macAddress?: string }> {
    const { state, dataplane, config } = this.deps;
    const log = this.deps.log.child({ network: short(input.networkId), endpoint: short(input.endpointId) });
    const ipv4 = this.checkEndpointAddress(input.address, 4);
    const ipv6 = this.checkEndpointAddress(input.addressIPv6, 6);
    let mac: string | undefined;
    if (input.macAddress !== '') {
      mac = normalizeMac(input.macAddress);
      if (!mac) throw new TsoverlayError('INVALID_REQUEST', `"${input.macAddress}" is not a MAC address`);
    }
    const hostIf = this.deviceName(hostIfName, input.endpointId);
    const containerIf = this.deviceName(containerIfName, input.endpointId);
    const result = await this.locks.run(input.networkId, async () => {
      const net = await state.getNetwork(input.networkId);
      if (!net) throw this.unknownNetwork(input.networkId);
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
      await state.createEndpoint(rec);
      try {
        await dataplane.ensureEndpoint(endpointDevices(rec, net));
      } catch (e) {
        log.error({ err: e }, 'creating endpoint veth failed; rolling back');
        await state.deleteEndpoint(net.id, rec.id).catch((re: unknown) => log.error({ err: re }, 'rollback of endpoint record failed'));
        await dataplane.deleteLink(hostIf).catch(() => false);
        throw this.kernelError(e, `could not create the interface of endpoint ${short(rec.id)}`);
      }
      log.info({ ip: rec.ipv4 ?? rec.ipv6, mac: rec.mac, ifname: hostIf }, 'endpoint created');
      return mac ? {} : { macAddress: rec.mac };
    });
    this.changed();
    return result;
  }

  async join(networkId: string, endpointId: string): Promise<JoinResult> {
    const net = await this.deps.state.getNetwork(networkId);
    if (!net) throw this.unknownNetwork(networkId);
    const ep = await this.deps.state.getEndpoint(networkId, endpointId);
    if (!ep) {
      throw new TsoverlayError('ENDPOINT_NOT_FOUND', `endpoint ${short(endpointId)} is not known to tsoverlay; recreate the container`);
    }
    // No Gateway: like Docker's overlay, dockerd then gives the container its
    // way out through docker_gwbridge. Internal networks get none.
    return { srcName: ep.containerIf, dstPrefix: 'eth', disableGatewayService: net.internal };
  }

  async leave(networkId: string, endpointId: string): Promise<void> {
    // Docker moves the container end back to the host namespace; DeleteEndpoint removes it.
    this.deps.log.debug({ network: short(networkId), endpoint: short(endpointId) }, 'endpoint left');
  }

  async deleteEndpoint(networkId: string, endpointId: string): Promise<void> {
    const log = this.deps.log.child({ network: short(networkId), endpoint: short(endpointId) });
    await this.locks.run(networkId, async () => {
      const ep = await this.deps.state.getEndpoint(networkId, endpointId);
      if (ep) await this.deps.state.deleteEndpoint(networkId, endpointId);
      const names = ep ? [ep.hostIf, ep.containerIf] : this.derivedNames(endpointId);
      const failures: unknown[] = [];
      for (const name of names) {
        try {
          await this.deps.dataplane.deleteLink(name);
        } catch (e) {
          failures.push(e);
        }
      }
      if (failures.length > 0) {
        log.error({ err: new AggregateError(failures) }, 'removing endpoint veth failed; the reconciler will retry');
        throw this.kernelError(failures[0], `endpoint ${short(endpointId)} removed, but its interface could not be deleted yet`);
      }
      if (ep) log.info({ ifname: ep.hostIf }, 'endpoint removed');
    });
    this.changed();
  }

  private async storeNetwork(
    networkId: string,
    fixedVni: number | undefined,
    rest: Pick<NetworkRecord, 'mtu' | 'internal' | 'ipv4' | 'ipv6' | 'options'>,
  ): Promise<NetworkRecord> {
    const { state, config } = this.deps;
    for (let attempt = 0; attempt < 10; attempt++) {
      const vni = fixedVni ?? this.pickVni(await state.usedVnis());
      const rec: NetworkRecord = {
        id: asNetworkId(networkId),
        vni: asVni(vni),
        ...rest,
        createdBy: config.node,
        createdAt: (this.deps.now?.() ?? new Date()).toISOString(),
      };
      try {
        await state.createNetwork(rec);
        return rec;
      } catch (e) {
        // Another network took the VNI between our read and our write.
        if (isTsoverlayError(e, 'VNI_IN_USE') && fixedVni === undefined) continue;
        throw e;
      }
    }
    throw new TsoverlayError('STORE_CONFLICT', 'VNIs kept changing while choosing one; try again');
  }

  private pickVni(used: Set<number>): number {
    const start = this.deps.config.vniStart;
    for (let v = start; v <= VNI_MAX; v++) if (!used.has(v)) return v;
    for (let v = 1; v < start; v++) if (!used.has(v)) return v;
    throw new TsoverlayError('VNI_EXHAUSTED', 'every VXLAN network identifier is in use; remove unused networks');
  }

  private checkIpamData(data: IpamData[], family: 4 | 6): NetworkSubnet[] {
    return data.map((d) => {
      const space = ADDRESS_SPACES.find((s) => s === d.addressSpace);
      if (!space) {
        throw new TsoverlayError(
          'NOT_OURS',
          `tsoverlay networks must take their addresses from tsoverlay's IPAM so they stay unique across hosts: add --ipam-driver tsoverlay (got address space "${d.addressSpace}")`,
        );
      }
      const cidr = parseCidr(d.pool);
      if (!cidr || cidr.family !== family) throw new TsoverlayError('INVALID_REQUEST', `"${d.pool}" is not an IPv${family} pool`);
      return { poolId: asPoolId(poolIdOf(space, cidr)), pool: d.pool, ...(d.gateway ? { gateway: d.gateway } : {}) };
    });
  }

  private checkEndpointAddress(text: string, family: 4 | 6): string | undefined {
    if (text === '') return undefined;
    const a = parseIpWithPrefix(text);
    if (!a || a.ip.family !== family) throw new TsoverlayError('INVALID_REQUEST', `"${text}" is not an IPv${family} address in CIDR form`);
    return text;
  }

  private deviceName(fn: (id: string) => string, endpointId: string): string {
    try {
      return fn(endpointId);
    } catch (e) {
      throw new TsoverlayError('INVALID_REQUEST', `endpoint id "${endpointId}" is too short`, { cause: e });
    }
  }

  private derivedNames(endpointId: string): string[] {
    try {
      return [hostIfName(endpointId), containerIfName(endpointId)];
    } catch {
      return [];
    }
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

  private changed(): void {
    this.deps.onChange?.();
  }
}
