/**
 * The links of the netlink adapter, per layout: listing ours, ensuring a
 * network's devices and an endpoint's, deleting a link.
 *
 * - Bridge layout: a Linux bridge `tsbr-<vni>` and a VXLAN device
 *   `tsvx-<vni>` enslaved to it; per endpoint a veth pair, the host end
 *   `tsh…` on the bridge and up, the container end `tsc…` with the
 *   endpoint's MAC and MTU, left down (Docker moves it into the sandbox,
 *   renames and configures it).
 * - Macvlan layout: no bridge. The VXLAN device alone, the host's macvlan
 *   (bridge mode) `tsbr-<vni>` on it, and per endpoint one macvlan `tsc…`
 *   on it, handed to Docker as the container end is.
 * - Every mutation is an ensure: read the device by name, keep it if
 *   compatible (fix master/MTU/up in place, one RTM_SETLINK only if
 *   something differs), else log why, delete and recreate. A second
 *   identical call only reads. (The VXLAN device is the exception: it is
 *   created first and read only if that fails with EEXIST, see
 *   DeviceWriter.ensureVxlan.)
 */
import { TsoverlayError } from '../errors.js';
import type { Log } from '../log.js';
import type {
  BridgeNetworkDevices,
  EndpointDevices,
  MacvlanEndpointDevices,
  MacvlanNetworkDevices,
  NetworkDevices,
  ObservedLink,
  VethEndpointDevices,
} from './dataplane.js';
import { DeviceWriter } from './netlink-devices.js';
import { errnoOf } from './netlink/kernel-error.js';
import type { Exec } from './netlink/lane.js';
import type { KernelLink } from './netlink/link-message.js';
import type { LinkQueries } from './netlink/link-queries.js';
import { dumpAddresses } from './netlink/underlay.js';
import { isValidIfname, OWNED_PREFIX } from './names.js';
import { addressesByLink } from './netlink-routing.js';
import { checkEndpointSpec, checkNetworkSpec, checkVxlanMtu } from './spec.js';

/** How long ensureNetwork trusts the underlay (its MTU) it looked up. */
const UNDERLAY_TTL_MS = 1000;

/** A bridge as ensureNetwork leaves it: the spec's MTU and MAC, up. */
const bridgeMatches = (b: KernelLink, spec: BridgeNetworkDevices): boolean =>
  b.mtu === spec.mtu && b.up && (spec.bridgeMac === undefined || b.mac === spec.bridgeMac);

export interface LinksKernel {
  exec: Exec;
  links: LinkQueries;
  log: Log;
  /** Called before a device is created or deleted (the forwarding calls' cache of devices). */
  forget(name: string): void;
}

export class NetlinkLinks {
  private readonly exec: Exec;
  private readonly q: LinkQueries;
  private readonly log: Log;
  private readonly w: DeviceWriter;
  private underlayCache: { index: number; link: KernelLink; until: number } | undefined;

  constructor(k: LinksKernel) {
    this.exec = k.exec;
    this.q = k.links;
    this.log = k.log;
    this.w = new DeviceWriter(k);
  }

  async listOwnedLinks(): Promise<ObservedLink[]> {
    // Only our links are parsed; a master that is not ours is not named.
    const owned = await this.q.dumpLinks(undefined, (name) => name.startsWith(OWNED_PREFIX));
    const names = new Map(owned.map((l) => [l.index, l.name]));
    const addresses = addressesByLink(await dumpAddresses(this.exec));
    return owned.map((l) => observed(l, names, addresses.get(l.index)));
  }

  async ensureNetwork(input: NetworkDevices): Promise<boolean> {
    const spec = checkNetworkSpec(input);
    // The kernel clamps an oversized VXLAN MTU silently at creation (and
    // rejects it with EINVAL on change): check against the underlay first.
    const underlay = await this.underlayLink(spec.underlayIndex);
    checkVxlanMtu(spec, underlay && { name: underlay.name, mtu: underlay.mtu });
    switch (spec.layout) {
      case 'bridge':
        return this.ensureBridgeNetwork(spec);
      case 'macvlan':
        return this.ensureMacvlanNetwork(spec);
      default: {
        const never: never = spec;
        throw new TsoverlayError('INVALID_OPTION', `unknown layout ${JSON.stringify(never)}`);
      }
    }
  }

  async ensureEndpoint(input: EndpointDevices): Promise<void> {
    const spec = checkEndpointSpec(input);
    switch (spec.layout) {
      case 'bridge':
        return this.ensureVethEndpoint(spec);
      case 'macvlan':
        return this.ensureMacvlanEndpoint(spec);
      default: {
        const never: never = spec;
        throw new TsoverlayError('INVALID_OPTION', `unknown layout ${JSON.stringify(never)}`);
      }
    }
  }

  async deleteLink(name: string): Promise<boolean> {
    if (!isValidIfname(name)) return false; // no such device can exist
    return this.w.removeLink(name);
  }

  /** Bridge layout: the bridge, and the VXLAN device as its port. */
  private async ensureBridgeNetwork(spec: BridgeNetworkDevices): Promise<boolean> {
    const bridge = await this.w.ensureBridge(spec);
    const { created } = await this.w.ensureVxlan(spec, bridge.index);
    // A new VXLAN port (made with the spec's MTU) leaves a bridge that
    // already matched as it was: the kernel moves a bridge's MTU only toward
    // its ports' (all the spec's), and its MAC only while none was set.
    if (created && bridgeMatches(bridge, spec)) return created;
    // Else converge it last: enslaving adjusts the bridge MTU to its ports'.
    const final = await this.q.findLink(spec.bridge);
    if (!final) throw new TsoverlayError('KERNEL_FAILURE', `ensure network ${spec.bridge}: the bridge vanished while being set up`);
    await this.w.converge(final, { mtu: spec.mtu, up: true, ...(spec.bridgeMac ? { mac: spec.bridgeMac } : {}) });
    return created;
  }

  /** Bridge layout: the veth pair, host end on the bridge. */
  private async ensureVethEndpoint(spec: VethEndpointDevices): Promise<void> {
    const bridge = await this.q.findLink(spec.bridge);
    if (!bridge || bridge.kind !== 'bridge') {
      throw new TsoverlayError('KERNEL_FAILURE', `ensure endpoint ${spec.hostIf}: bridge ${spec.bridge} does not exist`);
    }
    for (let attempt = 1; ; attempt++) {
      let host = await this.q.findLink(spec.hostIf);
      if (host && host.kind !== 'veth') {
        this.log.warn({ ifname: spec.hostIf, reason: `kind is ${host.kind || 'none'}, want veth` }, 'recreating incompatible device');
        await this.w.removeLink(spec.hostIf);
        host = undefined;
      }
      if (host) {
        await this.w.converge(host, { master: bridge.index, mtu: spec.mtu, up: true });
        // The container end is still here until Docker moves it into the sandbox.
        const peer = await this.q.findLink(spec.containerIf);
        if (peer?.kind === 'veth') await this.w.converge(peer, { mtu: spec.mtu, mac: spec.mac });
        return;
      }
      const orphan = await this.q.findLink(spec.containerIf);
      if (orphan) {
        this.log.info({ ifname: spec.containerIf }, 'removing container end left without its host end');
        await this.w.removeLink(spec.containerIf);
      }
      try {
        await this.w.createVeth(spec, bridge.index);
        return;
      } catch (e) {
        // A concurrent ensure of the same endpoint created it first: converge that one.
        if (errnoOf(e) !== 'EEXIST' || attempt > 1) throw e;
      }
    }
  }

  /**
   * Macvlan layout: the VXLAN device on no bridge, and the host's macvlan
   * (named as the bridge is in the other layout) on it. Where it matters (a new network, devices
   * lost in a restart) nothing is there: the VXLAN device is created first,
   * read once for its index, and the macvlan created on it (3 requests); an
   * existing VXLAN device is not read again. A bridge of the other layout
   * under the macvlan's name is found when that create fails, and replaced.
   */
  private async ensureMacvlanNetwork(spec: MacvlanNetworkDevices): Promise<boolean> {
    const vx = await this.w.ensureVxlan(spec, undefined);
    const vxlan = vx.created ? await this.q.findLink(spec.vxlan) : vx.kept;
    if (!vxlan) throw new TsoverlayError('KERNEL_FAILURE', `ensure network ${spec.vxlan}: the vxlan device vanished while being set up`);
    // a new VXLAN device has no macvlans yet: create the host's first
    const mac = spec.hostMacvlanMac === undefined ? {} : { mac: spec.hostMacvlanMac };
    await this.w.ensureMacvlan(spec.hostMacvlan, vxlan, { mtu: spec.mtu, up: true, ...mac }, vx.created);
    return vx.created;
  }

  /** Macvlan layout: the container end, a macvlan on the VXLAN device. */
  private async ensureMacvlanEndpoint(spec: MacvlanEndpointDevices): Promise<void> {
    const vxlan = await this.q.findLink(spec.vxlan);
    if (vxlan?.kind !== 'vxlan') {
      throw new TsoverlayError('KERNEL_FAILURE', `ensure endpoint ${spec.containerIf}: vxlan device ${spec.vxlan} does not exist`);
    }
    // Created down: Docker brings the interface up inside the container.
    await this.w.ensureMacvlan(spec.containerIf, vxlan, { mtu: spec.mtu, mac: spec.mac });
  }


  /**
   * The underlay, for the MTU check of ensureNetwork: looked up at most once
   * per UNDERLAY_TTL_MS (a restart recreates hundreds of networks in a row).
   */
  private async underlayLink(index: number): Promise<KernelLink | undefined> {
    const now = performance.now();
    if (this.underlayCache?.index === index && this.underlayCache.until > now) return this.underlayCache.link;
    const link = await this.q.findLinkByIndex(index);
    this.underlayCache = link && { index, link, until: now + UNDERLAY_TTL_MS };
    return link;
  }
}

const observed = (l: KernelLink, names: Map<number, string>, addresses: string[] | undefined): ObservedLink => {
  const o: ObservedLink = { name: l.name, index: l.index, kind: l.kind, mtu: l.mtu, up: l.up };
  if (l.mac !== undefined) o.mac = l.mac;
  const master = l.master === undefined ? undefined : names.get(l.master);
  if (master !== undefined) o.master = master;
  const lower = l.link === undefined ? undefined : names.get(l.link);
  if (lower !== undefined && l.kind === 'macvlan') o.lower = lower;
  if (l.macvlanMode !== undefined) o.macvlanMode = l.macvlanMode;
  if (l.macvlanBcCutoff !== undefined) o.macvlanBcCutoff = l.macvlanBcCutoff;
  if (l.vxlan) {
    const { vni, port, local, link, group, learning, proxy, l2miss, l3miss } = l.vxlan;
    o.vxlan = { vni, port, learning, proxy };
    if (local !== undefined) o.vxlan.local = local;
    if (link !== undefined) o.vxlan.link = link;
    if (group !== undefined) o.vxlan.group = group;
    if (l2miss) o.vxlan.l2miss = true;
    if (l3miss) o.vxlan.l3miss = true;
  }
  if (addresses && addresses.length > 0) o.addresses = addresses;
  return o;
};
