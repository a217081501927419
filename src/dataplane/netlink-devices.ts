/**
 * The device primitives of the netlink adapter: create a bridge, a VXLAN
 * device, a macvlan or a veth pair; keep a compatible existing device and
 * converge it in place (one RTM_SETLINK with only what differs), or log why
 * and recreate it; delete a device. The layouts (netlink-links.ts) put
 * these together.
 *
 * - The VXLAN device is created with `learning off`, `proxy on` and
 *   `l2miss`/`l3miss` off (netlink-forwarding.ts explains why); what the
 *   kernel cannot change on a running device (vxlanIncompat in vxlan-compat.ts)
 *   makes a recreate, what it can (vxlanChanges) one RTM_NEWLINK in place.
 * - IFLA_LINKINFO and VETH_INFO_PEER are raw buffers in the package: we
 *   encode them with `AttrStream`; `IFLA_VXLAN_PORT` is big-endian.
 */
import { AttrStream, ifla, rt, type StreamData } from 'netlink';
import { TsoverlayError } from '../errors.js';
import type { Log } from '../log.js';
import type { BridgeNetworkDevices, NetworkDevices, VethEndpointDevices } from './dataplane.js';
import { ipToBytes, macToBytes } from './netlink/addr.js';
import { errnoOf, kernelFailure } from './netlink/kernel-error.js';
import type { Exec } from './netlink/lane.js';
import type { KernelLink, VxlanState } from './netlink/link-message.js';
import { type LinkQueries, linkinfo, u32 } from './netlink/link-queries.js';
import { IFLA_MACVLAN_BC_CUTOFF, MACVLAN_BC_INLINE, MACVLAN_MODE_BRIDGE, NLM_F_CREATE, NLM_F_EXCL } from './netlink/linux.js';
import { describeVxlanChanges, vxlanChanges, vxlanIncompat } from './vxlan-compat.js';

/**
 * Every macvlan we create: bridge mode, and broadcasts delivered inline for
 * the whole port (the package has no name for IFLA_MACVLAN_BC_CUTOFF).
 * bench/broadcast.sh measures what the kernel's default queue drops.
 */
const MACVLAN_DATA: StreamData = (out) => {
  out.emit(ifla.formatMacvlan({ mode: MACVLAN_MODE_BRIDGE }));
  out.push(IFLA_MACVLAN_BC_CUTOFF, Buffer.from(Int32Array.of(MACVLAN_BC_INLINE).buffer));
};

/** What `converge` may change on a link. */
export interface LinkChange {
  mtu?: number;
  master?: number;
  up?: boolean;
  mac?: string;
}

/** What the device writers need from the adapter. */
export interface DeviceKernel {
  exec: Exec;
  links: LinkQueries;
  log: Log;
  /** Called before a device is created or deleted (the forwarding calls' cache of devices). */
  forget(name: string): void;
}

export class DeviceWriter {
  private readonly log: Log;
  private readonly links: LinkQueries;
  private readonly forget: (name: string) => void;

  constructor(private readonly k: DeviceKernel) {
    this.log = k.log;
    this.links = k.links;
    this.forget = k.forget;
  }

  async ensureBridge(spec: BridgeNetworkDevices): Promise<KernelLink> {
    for (let attempt = 1; ; attempt++) {
      const found = await this.links.findLink(spec.bridge);
      if (found?.kind === 'bridge') return found;
      if (found) {
        this.log.warn({ ifname: spec.bridge, reason: `kind is ${found.kind || 'none'}, want bridge` }, 'recreating incompatible device');
        await this.removeLink(spec.bridge);
      }
      try {
        await this.create('create bridge', { ifname: spec.bridge, mtu: spec.mtu, linkinfo: linkinfo('bridge') });
        this.log.info({ ifname: spec.bridge, mtu: spec.mtu }, 'created bridge');
      } catch (e) {
        if (errnoOf(e) !== 'EEXIST' || attempt > 1) throw e; // lost a race: read it again
      }
      const created = await this.links.findLink(spec.bridge);
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
  async ensureVxlan(spec: NetworkDevices, bridgeIndex: number | undefined): Promise<{ created: true } | { created: false; kept: KernelLink }> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.createVxlan(spec, bridgeIndex);
        this.log.info(
          { ifname: spec.vxlan, vni: spec.vni, port: spec.port, local: spec.local, ...(spec.group === undefined ? {} : { group: spec.group }) },
          'created vxlan device',
        );
        return { created: true };
      } catch (e) {
        if (errnoOf(e) !== 'EEXIST') throw e;
        // This very device exists (perhaps just made by a concurrent ensure):
        // converge it, or replace it if it cannot be; or another device
        // already owns VNI+port.
        const found = await this.links.findLink(spec.vxlan);
        if (found && attempt < 3) {
          // In macvlan mode a VXLAN device still on a bridge cannot take macvlans.
          const onBridge = bridgeIndex === undefined && found.master !== undefined;
          const reason = vxlanIncompat(found.kind, found.vxlan, spec) || (onBridge ? 'on a bridge, want none' : '');
          if (!reason && found.vxlan) {
            await this.changeVxlan(found, found.vxlan, spec);
            await this.converge(found, { ...(bridgeIndex === undefined ? {} : { master: bridgeIndex }), mtu: spec.mtu, up: true });
            return { created: false, kept: found }; // changed in place: same index
          }
          this.log.warn({ ifname: spec.vxlan, reason }, 'recreating incompatible vxlan device');
          await this.removeLink(spec.vxlan);
          continue;
        }
        const owner = (await this.links.dumpLinks()).find(
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
   * A macvlan in bridge mode on `lower`, converged (MTU, MAC, up) in place,
   * or recreated if it is something else or sits on another device.
   * `createFirst`: try the create before looking (it fails with EEXIST if
   * the name is taken, and then the device is looked at).
   */
  async ensureMacvlan(name: string, lower: KernelLink, want: { mtu: number; mac?: string; up?: boolean }, createFirst = false): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const found = createFirst && attempt === 1 ? undefined : await this.links.findLink(name);
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
        this.log.warn({ ifname: name, reason }, 'recreating incompatible device');
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
        await this.k.exec('create macvlan', name, (s, o) => s.newLink(up, attrs, { ...o, flags: NLM_F_CREATE | NLM_F_EXCL }));
        this.log.info({ ifname: name, lower: lower.name, mtu: want.mtu }, 'created macvlan');
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
    this.log.info({ ifname: link.name, vni: spec.vni, changes: what }, 'changing vxlan device in place');
    // RTM_NEWLINK on an existing device (no NLM_F_CREATE): only it reaches the
    // kind's changelink; an RTM_SETLINK ignores IFLA_INFO_DATA.
    await this.k.exec('change vxlan', link.name, (s, o) => s.newLink({ index: link.index }, { linkinfo: linkinfo('vxlan', data) }, o));
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

  async createVeth(spec: VethEndpointDevices, bridgeIndex: number): Promise<void> {
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
    this.log.info({ ifname: spec.hostIf, peer: spec.containerIf, bridge: spec.bridge }, 'created veth pair');
  }


  /** RTM_NEWLINK with CREATE|EXCL; the new device comes up at once. */
  private async create(operation: string, attrs: ifla.LinkAttrs & { ifname: string }): Promise<void> {
    this.forget(attrs.ifname);
    await this.k.exec(operation, attrs.ifname, (s, o) =>
      s.newLink({ flags: { up: true }, change: { up: true } }, attrs, { ...o, flags: NLM_F_CREATE | NLM_F_EXCL }),
    );
  }

  /** One RTM_SETLINK with only the attributes that differ; none if nothing does. */
  async converge(link: KernelLink, want: LinkChange): Promise<void> {
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
    this.log.debug({ ifname: link.name, changes }, 'converging device');
    await this.k.exec('set link', link.name, (s, o) =>
      s.setLink({ index: link.index, ...(up ? { flags: { up: true }, change: { up: true } } : {}) }, attrs, o),
    );
  }

  /** RTM_DELLINK by name; false if there was no such device. */
  async removeLink(name: string): Promise<boolean> {
    this.forget(name);
    try {
      await this.k.exec('delete link', name, (s, o) => s.delLink({}, { ifname: name }, o));
      this.log.info({ ifname: name }, 'deleted device');
      return true;
    } catch (e) {
      if (errnoOf(e) === 'ENODEV') return false;
      throw e;
    }
  }
}
