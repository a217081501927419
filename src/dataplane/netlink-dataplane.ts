/**
 * NetlinkDataplane: the kernel side of tsoverlay, spoken over rtnetlink
 * (the `netlink` package; no `ip`/`bridge` processes).
 *
 * How it works
 * - Per network: a Linux bridge `tsbr-<vni>` and a VXLAN device `tsvx-<vni>`
 *   enslaved to it. The VXLAN device has the network's VNI, the configured UDP
 *   port, `local` = this host's underlay address and `link` = the underlay
 *   interface, so encapsulated traffic leaves through the advertised interface.
 * - Per endpoint: a veth pair. The host end `tsh…` is enslaved to the bridge
 *   and up; the container end `tsc…` carries the endpoint's MAC and MTU and is
 *   left down: Docker moves it into the sandbox, renames and configures it.
 * - Macvlan mode (`NetworkDevices.mode`): no bridge. `tsbr-<vni>` is the
 *   host's macvlan (bridge mode) on the VXLAN device, and an endpoint is one
 *   macvlan `tsc…` on it, handed to Docker as the container end is.
 * - The VXLAN device is created with `learning off`, `proxy on` and
 *   `l2miss`/`l3miss` off: it forwards only by the FDB and neighbour entries
 *   programmed from the cluster store (netlink-forwarding.ts explains why).
 * - Every mutation is an ensure: read the device by name, keep it if
 *   compatible (fix master/MTU/up in place, one RTM_SETLINK only if something
 *   differs), else log why, delete and recreate. A second identical call only
 *   reads. (The VXLAN device is the exception: it is created first and read
 *   only if that fails with EEXIST, see ensureVxlan.)
 *
 * Netlink notes (see also shared/docs/multi-host-lab.md):
 * - The package pairs replies with requests by sequence number, but keeps a
 *   single "multipart in progress" buffer per socket, and the kernel answers
 *   a second dump on a socket that is still dumping with EBUSY. Concurrent
 *   dumps on one socket therefore break; all requests go through one queue
 *   here (each takes microseconds). Requests answered by a bare ACK may go
 *   together: `addForwarding` writes its entries many to a `sendmsg`, as one
 *   job of the queue (neigh-batch.ts).
 * - Link answers are read by hand (link-message.ts), not by the package's
 *   parser, which turns every attribute of every link into objects: a dump
 *   of a few thousand links was most of a restart's garbage.
 * - After a timeout the socket may still deliver the late answer (or half a
 *   dump): the socket is dropped and a fresh one opened on the next request.
 * - IFLA_LINKINFO and VETH_INFO_PEER are raw buffers in the package: we
 *   encode them with `AttrStream`; `IFLA_VXLAN_PORT` is big-endian.
 * - The package does not set NETLINK_GET_STRICT_CHK, so the kernel parses
 *   requests the legacy way and may ignore a dump's filters: every dump is
 *   filtered again by its reader (FDB and neighbour dumps:
 *   netlink-forwarding.ts; rules and routes: netlink-routing.ts).
 *
 * The VXLAN forwarding entries (FDB and neighbour) live in
 * netlink-forwarding.ts, the resolver's routing (bridge addresses, the source
 * rule, the routes of its table) in netlink-routing.ts; both share this
 * adapter's queue.
 */
import { AttrStream, createRtNetlink, ifla, type RtNetlinkSocket, rt, type StreamData } from 'netlink';
import { TsoverlayError } from '../errors.js';
import { type Log, silentLog } from '../log.js';
import { bytesToIp, canonicalIp, ipToBytes, macToBytes } from './addr.js';
import type {
  Dataplane,
  EndpointDevices,
  FdbEntry,
  Forwarding,
  ForwardingFailure,
  NeighEntry,
  NetworkDevices,
  ObservedLink,
  TableRoute,
  Underlay,
} from './dataplane.js';
import { errnoOf, kernelFailure, toKernelError } from './kernel-error.js';
import { isValidIfname, OWNED_PREFIX } from './names.js';
import { type KernelLink, parseLinkMessage } from './link-message.js';
import { rawAnswers } from './raw-answers.js';
import { NetlinkForwarding } from './netlink-forwarding.js';
import { addressesByLink, NetlinkRouting, type TimedOptions } from './netlink-routing.js';
import {
  checkEndpointSpec,
  checkNetworkSpec,
  checkVxlanMtu,
  describeVxlanChanges,
  type VxlanState,
  vxlanChanges,
  vxlanIncompat,
} from './spec.js';
import {
  AF_INET,
  AF_INET6,
  IFLA_MACVLAN_BC_CUTOFF,
  MACVLAN_BC_INLINE,
  MACVLAN_MODE_BRIDGE,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  RTM_GETLINK,
  RTM_NEWLINK,
} from './linux.js';

export { VXLAN_TARGET_TTL_MS } from './netlink-forwarding.js';


export interface NetlinkDataplaneOptions {
  log?: Log | undefined;
  /** Per-request timeout (the package has none by default). Default 5000. */
  requestTimeoutMs?: number | undefined;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;


interface KernelAddress {
  index: number;
  family: 4 | 6;
  address: string;
  global: boolean;
}

const encode = (data: StreamData): Buffer => {
  const out = new AttrStream();
  out.emit(data);
  return Buffer.concat(out.bufs);
};

/** IFLA_LINKINFO payload: IFLA_INFO_KIND [+ IFLA_INFO_DATA]. */
const linkinfo = (kind: string, data?: StreamData): Buffer =>
  encode(ifla.formatInfo(data === undefined ? { kind } : { kind, data: encode(data) }));

/** A u32 attribute the package types as raw bytes (IFLA_LINK). */
const u32 = (v: number): Buffer => Buffer.from(Uint32Array.of(v).buffer);

/**
 * Every macvlan we create: bridge mode, and broadcasts delivered inline for
 * the whole port (the package has no name for IFLA_MACVLAN_BC_CUTOFF).
 * bench/broadcast.sh measures what the kernel's default queue drops.
 */
const MACVLAN_DATA: StreamData = (out) => {
  out.emit(ifla.formatMacvlan({ mode: MACVLAN_MODE_BRIDGE }));
  out.push(IFLA_MACVLAN_BC_CUTOFF, Buffer.from(Int32Array.of(MACVLAN_BC_INLINE).buffer));
};

const parseAddress = (m: rt.AddressMessage): KernelAddress | undefined => {
  // IFA_LOCAL is the local address; IFA_ADDRESS is the peer on point-to-point links.
  const bytes = m.attrs.local ?? m.attrs.address;
  if (!bytes || (m.data.family !== AF_INET && m.data.family !== AF_INET6)) return undefined;
  const flags = m.attrs.flags ?? m.data.flags ?? {};
  return {
    index: m.data.index ?? 0,
    family: m.data.family === AF_INET ? 4 : 6,
    address: bytesToIp(bytes),
    global: (m.data.scope ?? 0) === RT_SCOPE_UNIVERSE && !flags.dadfailed,
  };
};

const isUnicastRoute = (type: unknown): boolean => type === 'UNICAST' || type === 1;

/** Output interface of a route: RTA_OIF, else the first hop of RTA_MULTIPATH (struct rtnexthop). */
const routeOif = (r: rt.RouteMessage): number | undefined => {
  if (r.attrs.oif) return r.attrs.oif;
  const mp = r.attrs.multipath;
  return mp && mp.length >= 8 ? mp.readInt32LE(4) : undefined;
};

const invalid = (message: string): TsoverlayError => new TsoverlayError('INVALID_OPTION', message);

interface LinkChange {
  mtu?: number;
  master?: number;
  up?: boolean;
  mac?: string;
}

/** IFLA_EXT_MASK = RTEXT_FILTER_SKIP_STATS (linux/rtnetlink.h): the counters are most of a link message and we never read them. */
const SKIP_STATS = Buffer.from(Uint32Array.of(1 << 3).buffer);
/** How long ensureNetwork trusts the underlay (its MTU) it looked up. */
const UNDERLAY_TTL_MS = 1000;

/** A bridge as ensureNetwork leaves it: the spec's MTU and MAC, up. */
const bridgeMatches = (b: KernelLink, spec: NetworkDevices): boolean =>
  b.mtu === spec.mtu && b.up && (spec.bridgeMac === undefined || b.mac === spec.bridgeMac);

/** An RTM_GETLINK written by the package; its answers' payloads unparsed, for parseLinkMessage. */
const linkRequest = (s: RtNetlinkSocket, data: rt.Link, attrs: ifla.LinkAttrs, o: TimedOptions & { flags?: number }): Promise<Buffer[]> => {
  const msg = new AttrStream();
  rt.formatLinkMessage({ kind: 'link', data, attrs }, msg);
  return rawAnswers(s, RTM_GETLINK, msg.bufs, RTM_NEWLINK, o);
};

export class NetlinkDataplane implements Dataplane {
  private readonly log: Log;
  private readonly timeoutMs: number;
  /**
   * Two sockets, each with its own queue: dumps (the reconciler reading the
   * whole kernel, thousands of links or entries) go on one, everything else
   * (a Docker call making a veth, an entry being added) on the other, so a
   * container attach never waits behind a dump.
   */
  private readonly lanes = { dump: new Lane(), change: new Lane() };
  private readonly forwarding: NetlinkForwarding;
  private underlayCache: { index: number; link: KernelLink; until: number } | undefined;
  private readonly routing: NetlinkRouting;

  /** No I/O here: the rtnetlink socket is opened by the first request. */
  constructor(options: NetlinkDataplaneOptions = {}) {
    this.log = options.log ?? silentLog;
    const timeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    if (!Number.isInteger(timeout) || timeout <= 0) {
      throw new TsoverlayError('INVALID_OPTION', `requestTimeoutMs must be a positive integer, got ${timeout}`);
    }
    this.timeoutMs = timeout;
    this.forwarding = new NetlinkForwarding({
      exec: (operation, device, fn, detail) => this.exec(operation, device, fn, detail),
      findLink: (name) => this.findLink(name),
    });
    this.routing = new NetlinkRouting({
      exec: (operation, device, fn, detail) => this.exec(operation, device, fn, detail),
      findLink: (name) => this.findLink(name),
      linkNames: async (kind) => new Map((await this.dumpLinks(kind)).map((l) => [l.index, l.name])),
      log: this.log,
    });
  }

  // ---------------------------------------------------------------- Dataplane

  /**
   * Reads only what it needs: the default routes, the addresses of one
   * family and the one link they point at (a host with thousands of
   * container links would otherwise be dumped whole, twice, at every start).
   */
  async resolveUnderlay(advertise: string | undefined): Promise<Underlay> {
    const addrs = new Map<4 | 6, Promise<KernelAddress[]>>();
    const addressesOf = (family: 4 | 6): Promise<KernelAddress[]> => {
      let p = addrs.get(family);
      if (!p) addrs.set(family, (p = this.dumpAddresses(family === 4 ? AF_INET : AF_INET6)));
      return p;
    };
    const underlay = (link: KernelLink, a: KernelAddress): Underlay => ({
      ifname: link.name,
      ifindex: link.index,
      address: a.address,
      family: a.family,
      mtu: link.mtu,
    });
    const globalOn = async (index: number, family: 4 | 6): Promise<KernelAddress | undefined> =>
      (await addressesOf(family)).find((a) => a.index === index && a.global);

    if (advertise === undefined) {
      let routeWithoutAddress: string | undefined;
      for (const [family, af] of [
        [4, AF_INET],
        [6, AF_INET6],
      ] as const) {
        for (const r of await this.defaultRoutes(af)) {
          const oif = routeOif(r);
          const link = oif === undefined ? undefined : await this.findLinkByIndex(oif);
          if (!link) continue;
          const src = r.attrs.prefsrc ? bytesToIp(r.attrs.prefsrc) : undefined;
          const a = (await addressesOf(family)).find((x) => x.index === link.index && x.address === src) ?? (await globalOn(link.index, family));
          if (a) return underlay(link, a);
          routeWithoutAddress ??= `${link.name} (IPv${family})`;
        }
      }
      if (routeWithoutAddress) {
        throw invalid(
          `the default route leaves through ${routeWithoutAddress}, which has no global address; set --advertise to an IP or interface name`,
        );
      }
      throw invalid('no default route on this host; set --advertise to an IP or interface name');
    }

    const ip = canonicalIp(advertise);
    if (ip) {
      const a = (await addressesOf(ip.family)).find((x) => x.address === ip.address);
      const link = a && (await this.findLinkByIndex(a.index));
      if (!a || !link) throw invalid(`--advertise ${advertise}: no interface on this host holds that address`);
      return underlay(link, a);
    }
    if (!isValidIfname(advertise)) throw invalid(`--advertise ${advertise}: not an IP address or interface name`);
    const link = await this.findLink(advertise);
    if (!link) throw invalid(`--advertise ${advertise}: no such interface on this host, and not an IP address`);
    const a = (await globalOn(link.index, 4)) ?? (await globalOn(link.index, 6));
    if (!a) throw invalid(`--advertise ${advertise}: the interface has no global IPv4 or IPv6 address`);
    return underlay(link, a);
  }

  async listOwnedLinks(): Promise<ObservedLink[]> {
    // Only our links are parsed; a master that is not ours is not named.
    const owned = await this.dumpLinks(undefined, (name) => name.startsWith(OWNED_PREFIX));
    const names = new Map(owned.map((l) => [l.index, l.name]));
    const addresses = addressesByLink(await this.dumpAddresses());
    return owned.map((l) => observed(l, names, addresses.get(l.index)));
  }

  async ensureNetwork(input: NetworkDevices): Promise<boolean> {
    const spec = checkNetworkSpec(input);
    // The kernel clamps an oversized VXLAN MTU silently at creation (and
    // rejects it with EINVAL on change): check against the underlay first.
    const underlay = await this.underlayLink(spec.underlayIndex);
    checkVxlanMtu(spec, underlay && { name: underlay.name, mtu: underlay.mtu });
    if (spec.mode === 'macvlan') return this.ensureMacvlanNetwork(spec);
    const bridge = await this.ensureBridge(spec);
    const { created } = await this.ensureVxlan(spec, bridge.index);
    // A new VXLAN port (made with the spec's MTU) leaves a bridge that
    // already matched as it was: the kernel moves a bridge's MTU only toward
    // its ports' (all the spec's), and its MAC only while none was set.
    if (created && bridgeMatches(bridge, spec)) return created;
    // Else converge it last: enslaving adjusts the bridge MTU to its ports'.
    const final = await this.findLink(spec.bridge);
    if (!final) throw new TsoverlayError('KERNEL_FAILURE', `ensure network ${spec.bridge}: the bridge vanished while being set up`);
    await this.converge(final, { mtu: spec.mtu, up: true, ...(spec.bridgeMac ? { mac: spec.bridgeMac } : {}) });
    return created;
  }

  async ensureEndpoint(input: EndpointDevices): Promise<void> {
    const spec = checkEndpointSpec(input);
    if (spec.macvlanOn !== undefined) return this.ensureMacvlanEndpoint(spec, spec.macvlanOn);
    const bridge = await this.findLink(spec.bridge);
    if (!bridge || bridge.kind !== 'bridge') {
      throw new TsoverlayError('KERNEL_FAILURE', `ensure endpoint ${spec.hostIf}: bridge ${spec.bridge} does not exist`);
    }
    for (let attempt = 1; ; attempt++) {
      let host = await this.findLink(spec.hostIf);
      if (host && host.kind !== 'veth') {
        this.log.warn({ device: spec.hostIf, reason: `kind is ${host.kind || 'none'}, want veth` }, 'recreating incompatible device');
        await this.removeLink(spec.hostIf);
        host = undefined;
      }
      if (host) {
        await this.converge(host, { master: bridge.index, mtu: spec.mtu, up: true });
        // The container end is still here until Docker moves it into the sandbox.
        const peer = await this.findLink(spec.containerIf);
        if (peer?.kind === 'veth') await this.converge(peer, { mtu: spec.mtu, mac: spec.mac });
        return;
      }
      const orphan = await this.findLink(spec.containerIf);
      if (orphan) {
        this.log.info({ device: spec.containerIf }, 'removing container end left without its host end');
        await this.removeLink(spec.containerIf);
      }
      try {
        await this.createVeth(spec, bridge.index);
        return;
      } catch (e) {
        // A concurrent ensure of the same endpoint created it first: converge that one.
        if (errnoOf(e) !== 'EEXIST' || attempt > 1) throw e;
      }
    }
  }

  async deleteLink(name: string): Promise<boolean> {
    if (!isValidIfname(name)) return false; // no such device can exist
    return this.removeLink(name);
  }

  // ------------------------------------------------ forwarding (netlink-forwarding.ts)

  addForwarding(vxlan: string, entries: Forwarding): Promise<ForwardingFailure[]> {
    return this.forwarding.addForwarding(vxlan, entries);
  }

  listAllForwarding(): Promise<Map<number, Forwarding>> {
    return this.forwarding.listAllForwarding();
  }

  listForwarding(vxlan: string): Promise<Forwarding> {
    return this.forwarding.listForwarding(vxlan);
  }

  addFdb(vxlan: string, entry: FdbEntry): Promise<void> {
    return this.forwarding.addFdb(vxlan, entry);
  }

  deleteFdb(vxlan: string, entry: FdbEntry): Promise<boolean> {
    return this.forwarding.deleteFdb(vxlan, entry);
  }

  addNeigh(vxlan: string, entry: NeighEntry): Promise<void> {
    return this.forwarding.addNeigh(vxlan, entry);
  }

  deleteNeigh(vxlan: string, entry: NeighEntry): Promise<boolean> {
    return this.forwarding.deleteNeigh(vxlan, entry);
  }

  // ------------------------------------------------- resolver (netlink-routing.ts)

  ensureBridgeAddress(bridge: string, address: string): Promise<void> {
    return this.routing.ensureBridgeAddress(bridge, address);
  }

  ensureLocalAddress(address: string): Promise<void> {
    return this.routing.ensureLocalAddress(address);
  }

  ensureSourceRule(source: string, table: number, priority: number): Promise<void> {
    return this.routing.ensureSourceRule(source, table, priority);
  }

  listTableRoutes(table: number): Promise<TableRoute[]> {
    return this.routing.listTableRoutes(table);
  }

  ensureTableRoute(table: number, route: TableRoute): Promise<void> {
    return this.routing.ensureTableRoute(table, route);
  }

  deleteTableRoute(table: number, route: { dst: string; dev: string }): Promise<boolean> {
    return this.routing.deleteTableRoute(table, route);
  }

  /** Close the socket (after queued requests finish). A later call opens a new one. */
  async close(): Promise<void> {
    await Promise.all(Object.values(this.lanes).map((l) => l.close()));
  }

  // ------------------------------------------------------------ ensure steps

  private async ensureBridge(spec: NetworkDevices): Promise<KernelLink> {
    for (let attempt = 1; ; attempt++) {
      const found = await this.findLink(spec.bridge);
      if (found?.kind === 'bridge') return found;
      if (found) {
        this.log.warn({ device: spec.bridge, reason: `kind is ${found.kind || 'none'}, want bridge` }, 'recreating incompatible device');
        await this.removeLink(spec.bridge);
      }
      try {
        await this.create('create bridge', { ifname: spec.bridge, mtu: spec.mtu, linkinfo: linkinfo('bridge') });
        this.log.info({ device: spec.bridge, mtu: spec.mtu }, 'created bridge');
      } catch (e) {
        if (errnoOf(e) !== 'EEXIST' || attempt > 1) throw e; // lost a race: read it again
      }
      const created = await this.findLink(spec.bridge);
      if (created?.kind === 'bridge') return created;
      if (attempt > 1) throw new TsoverlayError('KERNEL_FAILURE', `create bridge ${spec.bridge}: not found after creating it`);
    }
  }

  /**
   * `created` if the device was made (so it has no forwarding entries yet),
   * else the existing device it kept. Created first and looked at only when
   * that fails with EEXIST: where it matters (a new network, devices lost in
   * a restart) the device is missing, and one request makes it.
   */
  private async ensureVxlan(spec: NetworkDevices, bridgeIndex: number | undefined): Promise<{ created: true } | { created: false; kept: KernelLink }> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.createVxlan(spec, bridgeIndex);
        this.log.info(
          { device: spec.vxlan, vni: spec.vni, port: spec.port, local: spec.local, ...(spec.group === undefined ? {} : { group: spec.group }) },
          'created vxlan device',
        );
        return { created: true };
      } catch (e) {
        if (errnoOf(e) !== 'EEXIST') throw e;
        // This very device exists (perhaps just made by a concurrent ensure):
        // converge it, or replace it if it cannot be; or another device
        // already owns VNI+port.
        const found = await this.findLink(spec.vxlan);
        if (found && attempt < 3) {
          // In macvlan mode a VXLAN device still on a bridge cannot take macvlans.
          const onBridge = bridgeIndex === undefined && found.master !== undefined;
          const reason = vxlanIncompat(found.kind, found.vxlan, spec) || (onBridge ? 'on a bridge, want none' : '');
          if (!reason && found.vxlan) {
            await this.changeVxlan(found, found.vxlan, spec);
            await this.converge(found, { ...(bridgeIndex === undefined ? {} : { master: bridgeIndex }), mtu: spec.mtu, up: true });
            return { created: false, kept: found }; // changed in place: same index
          }
          this.log.warn({ device: spec.vxlan, reason }, 'recreating incompatible vxlan device');
          await this.removeLink(spec.vxlan);
          continue;
        }
        const owner = (await this.dumpLinks()).find(
          (l) => l.vxlan && l.name !== spec.vxlan && l.vxlan.vni === spec.vni && l.vxlan.port === spec.port,
        );
        throw kernelFailure(
          'create vxlan',
          spec.vxlan,
          e instanceof Error && e.cause ? e.cause : e,
          owner ? `VNI ${spec.vni} on UDP port ${spec.port} is already used by ${owner.name}` : undefined,
        );
      }
    }
  }

  /**
   * Macvlan mode: the VXLAN device on no bridge, and the host's macvlan
   * (named like the bridge) on it. Where it matters (a new network, devices
   * lost in a restart) nothing is there: the VXLAN device is created first,
   * read once for its index, and the macvlan created on it (3 requests); an
   * existing VXLAN device is not read again. A bridge of the other layout
   * under the macvlan's name is found when that create fails, and replaced.
   */
  private async ensureMacvlanNetwork(spec: NetworkDevices): Promise<boolean> {
    const vx = await this.ensureVxlan(spec, undefined);
    const vxlan = vx.created ? await this.findLink(spec.vxlan) : vx.kept;
    if (!vxlan) throw new TsoverlayError('KERNEL_FAILURE', `ensure network ${spec.vxlan}: the vxlan device vanished while being set up`);
    // a new VXLAN device has no macvlans yet: create the host's first
    await this.ensureMacvlan(spec.bridge, vxlan, { mtu: spec.mtu, up: true, ...(spec.bridgeMac ? { mac: spec.bridgeMac } : {}) }, vx.created);
    return vx.created;
  }

  private async ensureMacvlanEndpoint(spec: EndpointDevices, vxlanName: string): Promise<void> {
    const vxlan = await this.findLink(vxlanName);
    if (vxlan?.kind !== 'vxlan') {
      throw new TsoverlayError('KERNEL_FAILURE', `ensure endpoint ${spec.containerIf}: vxlan device ${vxlanName} does not exist`);
    }
    // Created down: Docker brings the interface up inside the container.
    await this.ensureMacvlan(spec.containerIf, vxlan, { mtu: spec.mtu, mac: spec.mac });
  }

  /**
   * A macvlan in bridge mode on `lower`, converged (MTU, MAC, up) in place,
   * or recreated if it is something else or sits on another device.
   * `createFirst`: try the create before looking (it fails with EEXIST if
   * the name is taken, and then the device is looked at).
   */
  private async ensureMacvlan(name: string, lower: KernelLink, want: { mtu: number; mac?: string; up?: boolean }, createFirst = false): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const found = createFirst && attempt === 1 ? undefined : await this.findLink(name);
      if (found) {
        const reason =
          found.kind !== 'macvlan'
            ? `kind is ${found.kind || 'none'}, want macvlan`
            : found.link !== lower.index
              ? `on #${found.link ?? 'none'}, want ${lower.name}`
              : found.macvlanMode !== MACVLAN_MODE_BRIDGE
                ? `macvlan mode ${found.macvlanMode ?? 'unknown'}, want bridge`
                : '';
        if (!reason) return this.converge(found, want);
        this.log.warn({ device: name, reason }, 'recreating incompatible device');
        await this.removeLink(name);
      }
      const mac = want.mac === undefined ? undefined : macToBytes(want.mac);
      const attrs: ifla.LinkAttrs = {
        ifname: name,
        mtu: want.mtu,
        link: u32(lower.index),
        ...(mac ? { address: mac } : {}),
        linkinfo: linkinfo('macvlan', MACVLAN_DATA),
      };
      const up: rt.Link = want.up ? { flags: { up: true }, change: { up: true } } : {};
      try {
        await this.exec('create macvlan', name, (s, o) => s.newLink(up, attrs, { ...o, flags: NLM_F_CREATE | NLM_F_EXCL }));
        this.log.info({ device: name, lower: lower.name, mtu: want.mtu }, 'created macvlan');
        return;
      } catch (e) {
        if (errnoOf(e) !== 'EEXIST' || attempt > 1) throw e; // lost a race: converge the winner's
      }
    }
  }

  /**
   * Change what the kernel changes on a running VXLAN device (a new
   * underlay address or interface, learning): one RTM_NEWLINK on it, no
   * recreate, so its entries and the macvlans on it stay.
   */
  private async changeVxlan(link: KernelLink, vx: VxlanState, spec: NetworkDevices): Promise<void> {
    const change = vxlanChanges(vx, spec);
    const what = describeVxlanChanges(vx, change);
    if (!what) return;
    const local = change.local === undefined ? undefined : ipToBytes(change.local);
    const data = ifla.formatVxlan({
      ...(local === undefined ? {} : local.length === 4 ? { local } : { local6: local }),
      ...(change.link === undefined ? {} : { link: change.link }),
      ...(change.learningOff ? { learning: 0 } : {}),
    });
    this.log.info({ device: link.name, vni: spec.vni, changes: what }, 'changing vxlan device in place');
    // RTM_NEWLINK on an existing device (no NLM_F_CREATE): only it reaches the
    // kind's changelink; an RTM_SETLINK ignores IFLA_INFO_DATA.
    await this.exec('change vxlan', link.name, (s, o) => s.newLink({ index: link.index }, { linkinfo: linkinfo('vxlan', data) }, o));
  }

  private async createVxlan(spec: NetworkDevices, bridgeIndex: number | undefined): Promise<void> {
    const local = ipToBytes(spec.local); // validated by checkNetworkSpec
    if (!local) throw new TsoverlayError('INVALID_OPTION', `VXLAN local address "${spec.local}" is not an IP address`);
    const port = Buffer.alloc(2);
    port.writeUInt16BE(spec.port); // IFLA_VXLAN_PORT is in network byte order
    // checkNetworkSpec made sure the group is multicast and of local's family;
    // a multicast group needs `link` (the kernel refuses it otherwise): always set.
    const group = spec.group === undefined ? undefined : ipToBytes(spec.group);
    const data = ifla.formatVxlan({
      id: spec.vni,
      port,
      link: spec.underlayIndex,
      ...(local.length === 4 ? { local } : { local6: local }),
      ...(group === undefined ? {} : group.length === 4 ? { group } : { group6: group }),
      learning: 0,
      proxy: 1,
      l2miss: 0,
      l3miss: 0,
    });
    await this.create('create vxlan', {
      ifname: spec.vxlan,
      mtu: spec.mtu,
      ...(bridgeIndex === undefined ? {} : { master: bridgeIndex }),
      linkinfo: linkinfo('vxlan', data),
    });
  }

  private async createVeth(spec: EndpointDevices, bridgeIndex: number): Promise<void> {
    const mac = macToBytes(spec.mac);
    if (!mac) throw new TsoverlayError('INVALID_OPTION', `MAC "${spec.mac}" is not a MAC address`);
    // VETH_INFO_PEER = struct ifinfomsg of the peer + its IFLA_* attributes.
    // Peer ifi_flags stay 0, so the container end is created down.
    const peer = new AttrStream();
    peer.emit(rt.formatLink({}));
    peer.emit(ifla.formatLinkAttrs({ ifname: spec.containerIf, address: mac, mtu: spec.mtu }));
    await this.create('create veth', {
      ifname: spec.hostIf,
      mtu: spec.mtu,
      master: bridgeIndex,
      linkinfo: linkinfo('veth', ifla.formatVethInfo({ peer: Buffer.concat(peer.bufs) })),
    });
    this.log.info({ device: spec.hostIf, peer: spec.containerIf, bridge: spec.bridge }, 'created veth pair');
  }

  // ------------------------------------------------------- kernel primitives

  /** RTM_NEWLINK with CREATE|EXCL; the new device comes up at once. */
  private async create(operation: string, attrs: ifla.LinkAttrs & { ifname: string }): Promise<void> {
    this.forwarding.forget(attrs.ifname);
    await this.exec(operation, attrs.ifname, (s, o) =>
      s.newLink({ flags: { up: true }, change: { up: true } }, attrs, { ...o, flags: NLM_F_CREATE | NLM_F_EXCL }),
    );
  }

  /** One RTM_SETLINK with only the attributes that differ; none if nothing does. */
  private async converge(link: KernelLink, want: LinkChange): Promise<void> {
    const attrs: ifla.LinkAttrs = {};
    const changes: string[] = [];
    if (want.mtu !== undefined && link.mtu !== want.mtu) {
      attrs.mtu = want.mtu;
      changes.push(`mtu ${link.mtu} -> ${want.mtu}`);
    }
    if (want.master !== undefined && link.master !== want.master) {
      attrs.master = want.master;
      changes.push(`master ${link.master ?? 'none'} -> ${want.master}`);
    }
    if (want.mac !== undefined && link.mac !== want.mac) {
      const mac = macToBytes(want.mac);
      if (mac) attrs.address = mac;
      changes.push(`mac ${link.mac ?? 'none'} -> ${want.mac}`);
    }
    const up = want.up === true && !link.up;
    if (up) changes.push('up');
    if (changes.length === 0) return;
    this.log.debug({ device: link.name, changes }, 'converging device');
    await this.exec('set link', link.name, (s, o) =>
      s.setLink({ index: link.index, ...(up ? { flags: { up: true }, change: { up: true } } : {}) }, attrs, o),
    );
  }

  /** RTM_DELLINK by name; false if there was no such device. */
  private async removeLink(name: string): Promise<boolean> {
    this.forwarding.forget(name);
    try {
      await this.exec('delete link', name, (s, o) => s.delLink({}, { ifname: name }, o));
      this.log.info({ device: name }, 'deleted device');
      return true;
    } catch (e) {
      if (errnoOf(e) === 'ENODEV') return false;
      throw e;
    }
  }

  private async findLink(name: string): Promise<KernelLink | undefined> {
    return this.getLink('get link', name, {}, { ifname: name });
  }

  /**
   * The underlay, for the MTU check of ensureNetwork: looked up at most once
   * per UNDERLAY_TTL_MS (a restart recreates hundreds of networks in a row).
   */
  private async underlayLink(index: number): Promise<KernelLink | undefined> {
    const now = performance.now();
    if (this.underlayCache?.index === index && this.underlayCache.until > now) return this.underlayCache.link;
    const link = await this.findLinkByIndex(index);
    this.underlayCache = link && { index, link, until: now + UNDERLAY_TTL_MS };
    return link;
  }

  private async findLinkByIndex(index: number): Promise<KernelLink | undefined> {
    return this.getLink('get link', `#${index}`, { index }, {});
  }

  /** One RTM_GETLINK, answered without statistics; undefined if there is no such device. */
  private async getLink(operation: string, device: string, data: rt.Link, attrs: ifla.LinkAttrs): Promise<KernelLink | undefined> {
    try {
      const [m] = await this.exec(operation, device, (s, o) => linkRequest(s, data, { ...attrs, extMask: SKIP_STATS }, o));
      return m && parseLinkMessage(m);
    } catch (e) {
      if (errnoOf(e) === 'ENODEV') return undefined;
      throw e;
    }
  }

  /**
   * Every link, or the links of one kind (the kernel filters by IFLA_LINKINFO's
   * kind), or those whose name passes `keep` (the others are not parsed).
   */
  private async dumpLinks(kind?: string, keep?: (name: string) => boolean): Promise<KernelLink[]> {
    const attrs = kind === undefined ? { extMask: SKIP_STATS } : { extMask: SKIP_STATS, linkinfo: linkinfo(kind) };
    const msgs = await this.exec('dump', kind === undefined ? 'links' : `${kind} links`, (s, o) => linkRequest(s, {}, attrs, { ...o, flags: NLM_F_DUMP }));
    const links: KernelLink[] = [];
    for (const m of msgs) {
      const link = parseLinkMessage(m, keep);
      if (link && (kind === undefined || link.kind === kind)) links.push(link); // in case a kernel ignores the filter
    }
    return links;
  }

  /** Every address, or those of one family (AF_INET/AF_INET6: the kernel dumps only that family). */
  private async dumpAddresses(family?: number): Promise<KernelAddress[]> {
    const msgs = await this.exec('dump', 'addresses', (s, o) => s.getAddresses(family === undefined ? {} : { family }, {}, o));
    const want = family === undefined ? undefined : family === AF_INET ? 4 : 6;
    return msgs.map(parseAddress).filter((a): a is KernelAddress => a !== undefined && (want === undefined || a.family === want));
  }

  /** Default routes of the main table for one family, lowest metric first. */
  private async defaultRoutes(family: number): Promise<rt.RouteMessage[]> {
    const msgs = await this.exec('dump', `IPv${family === AF_INET ? 4 : 6} routes`, (s, o) => s.getRoutes({ family }, {}, o));
    return msgs
      .filter((r) => (r.attrs.table ?? r.data.table) === RT_TABLE_MAIN && r.data.dstLen === 0 && isUnicastRoute(r.data.type))
      .sort((a, b) => (a.attrs.priority ?? 0) - (b.attrs.priority ?? 0));
  }

  // ------------------------------------------------------------- the socket

  /**
   * Run one request on its lane's socket, strictly one at a time (see the
   * netlink notes at the top), with the timeout, mapping failures to
   * `TsoverlayError` (`<operation> <device>: <errno>`).
   */
  private exec<T>(
    operation: string,
    device: string,
    fn: (s: RtNetlinkSocket, o: TimedOptions) => Promise<T>,
    detail?: string,
  ): Promise<T> {
    const lane = operation.startsWith('dump') ? this.lanes.dump : this.lanes.change;
    return lane.run(async (socket) => {
      try {
        return await fn(socket, { timeout: this.timeoutMs });
      } catch (e) {
        const ke = toKernelError(e);
        // A kernel errno leaves the socket clean; a timeout or a protocol
        // surprise may leave a late reply or half a dump queued on it.
        if (ke.errno === 'ETIMEDOUT' || ke.errno === 'EUNKNOWN') lane.drop(socket);
        throw kernelFailure(operation, device, ke, ke.errno === 'ETIMEDOUT' ? `no answer within ${this.timeoutMs} ms` : detail);
      }
    }, this.log);
  }
}

/** One rtnetlink socket and the queue of requests on it (one at a time). */
class Lane {
  private socket: RtNetlinkSocket | undefined;
  /** Tail of the request queue; never rejects. */
  private queue: Promise<unknown> = Promise.resolve();

  run<T>(fn: (socket: RtNetlinkSocket) => Promise<T>, log: Log): Promise<T> {
    const result = this.queue.then(() => fn(this.open(log)));
    this.queue = result.catch(() => undefined);
    return result;
  }

  async close(): Promise<void> {
    await this.queue;
    const s = this.socket;
    this.socket = undefined;
    s?.socket.close();
  }

  drop(socket: RtNetlinkSocket): void {
    if (this.socket !== socket) return; // already dropped
    this.socket = undefined;
    socket.socket.close();
  }

  private open(log: Log): RtNetlinkSocket {
    if (this.socket) return this.socket;
    let socket: RtNetlinkSocket;
    try {
      socket = createRtNetlink();
    } catch (e) {
      throw kernelFailure('open', 'rtnetlink socket', e);
    }
    // Without a listener an 'error' event would crash the process.
    socket.socket.on('error', (err) => {
      log.warn({ err }, 'rtnetlink socket error; opening a new socket for the next request');
      this.drop(socket);
    });
    this.socket = socket;
    return socket;
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
    const { vni, port, local, link, group, learning, proxy } = l.vxlan;
    o.vxlan = { vni, port, learning, proxy };
    if (local !== undefined) o.vxlan.local = local;
    if (link !== undefined) o.vxlan.link = link;
    if (group !== undefined) o.vxlan.group = group;
  }
  if (addresses && addresses.length > 0) o.addresses = addresses;
  return o;
};
