/**
 * The fake's links: underlay discovery, listing ours, a network's and an
 * endpoint's devices in either layout, deleting a link (as netlink-links.ts
 * does it for the kernel).
 */
import { TsoverlayError } from '../errors.js';
import type { EndpointDevices, NetworkDevices, ObservedLink, Underlay, VethEndpointDevices } from './dataplane.js';
import { endpointHostIf, hostDevice } from './layout.js';
import { type FakeKernel, type FakeLink, kernel } from './fake-kernel.js';
import { canonicalIp } from './netlink/addr.js';
import type { VxlanState } from './netlink/link-message.js';
import { MACVLAN_BC_INLINE, MACVLAN_MODE_BRIDGE } from './netlink/linux.js';
import { isValidIfname, OWNED_PREFIX } from './names.js';
import { sortAddresses } from './routing-spec.js';
import { checkEndpointSpec, checkNetworkSpec, checkVxlanMtu } from './spec.js';
import { describeVxlanChanges, vxlanChanges, vxlanIncompat } from './vxlan-compat.js';

const invalid = (message: string): TsoverlayError => new TsoverlayError('INVALID_OPTION', message);

export class FakeLinks {
  constructor(private readonly k: FakeKernel) {}

  async resolveUnderlay(advertise: string | undefined): Promise<Underlay> {
    this.k.hit('resolveUnderlay');
    if (advertise === undefined) {
      if (!this.k.defaultRoute) throw invalid('no default route on this host; set --advertise to an IP or interface name');
      return { ...this.k.underlay };
    }
    const ip = canonicalIp(advertise);
    if (ip) {
      const held = this.k.addresses.find((a) => a.address === ip.address);
      if (!held) throw invalid(`--advertise ${advertise}: no interface on this host holds that address`);
      return { ...this.k.underlay, ...held };
    }
    if (!isValidIfname(advertise)) throw invalid(`--advertise ${advertise}: not an IP address or interface name`);
    if (advertise !== this.k.underlay.ifname) {
      throw invalid(`--advertise ${advertise}: no such interface on this host, and not an IP address`);
    }
    const first = this.k.addresses.find((a) => a.family === 4) ?? this.k.addresses.find((a) => a.family === 6);
    return { ...this.k.underlay, ...first };
  }

  async listOwnedLinks(): Promise<ObservedLink[]> {
    this.k.hit('listOwnedLinks');
    const byIndex = new Map([...this.k.links.values()].map((l) => [l.index, l.name]));
    return [...this.k.links.values()]
      .filter((l) => l.name.startsWith(OWNED_PREFIX))
      .sort((a, b) => a.index - b.index)
      .map((l) => {
        const o: ObservedLink = { name: l.name, index: l.index, kind: l.kind, mtu: l.mtu, up: l.up, mac: l.mac };
        const master = l.masterIndex === undefined ? undefined : byIndex.get(l.masterIndex);
        if (master !== undefined) o.master = master;
        const lower = l.lowerIndex === undefined ? undefined : byIndex.get(l.lowerIndex);
        if (lower !== undefined) o.lower = lower;
        if (l.kind === 'macvlan') {
          o.macvlanMode = MACVLAN_MODE_BRIDGE;
          o.macvlanBcCutoff = MACVLAN_BC_INLINE;
        }
        if (l.addresses && l.addresses.size > 0) o.addresses = sortAddresses([...l.addresses]);
        if (l.vxlan) {
          const { vni, port, local, link, group, learning, proxy, l2miss, l3miss } = l.vxlan;
          o.vxlan = { vni, port, learning, proxy };
          if (local !== undefined) o.vxlan.local = local;
          if (link !== undefined) o.vxlan.link = link;
          if (group !== undefined) o.vxlan.group = group;
          if (l2miss) o.vxlan.l2miss = true;
          if (l3miss) o.vxlan.l3miss = true;
        }
        return o;
      });
  }

  async ensureNetwork(input: NetworkDevices): Promise<boolean> {
    this.k.calls.push(`ensureNetwork ${hostDevice(input)}`);
    this.k.hit('ensureNetwork');
    const spec = checkNetworkSpec(input);
    checkVxlanMtu(spec, spec.underlayIndex === this.k.underlay.ifindex ? { name: this.k.underlay.ifname, mtu: this.k.underlay.mtu } : undefined);
    switch (spec.layout) {
      case 'bridge': {
        let bridge = this.k.links.get(spec.bridge);
        if (bridge && bridge.kind !== 'bridge') {
          this.k.removeLink(spec.bridge);
          bridge = undefined;
        }
        bridge ??= this.k.createLink({ name: spec.bridge, kind: 'bridge', mtu: spec.mtu, up: true }, 'create bridge');
        const { created } = this.ensureVxlan(spec, bridge);
        this.k.setLink(bridge, { mtu: spec.mtu, up: true, ...(spec.bridgeMac ? { mac: spec.bridgeMac } : {}) });
        return created;
      }
      case 'macvlan': {
        const other = this.k.links.get(spec.hostMacvlan);
        if (other && other.kind !== 'macvlan') this.k.removeLink(spec.hostMacvlan);
        const { created, vx } = this.ensureVxlan(spec, undefined);
        this.ensureMacvlan(spec.hostMacvlan, vx, { mtu: spec.mtu, up: true, ...(spec.hostMacvlanMac ? { mac: spec.hostMacvlanMac } : {}) });
        return created;
      }
      default: {
        const never: never = spec;
        throw new TsoverlayError('INVALID_OPTION', `unknown layout ${JSON.stringify(never)}`);
      }
    }
  }

  /** The VXLAN device, kept (changed in place) or made again; a port of `bridge`, or of none. */
  private ensureVxlan(spec: NetworkDevices, bridge: FakeLink | undefined): { created: boolean; vx: FakeLink } {
    let vx = this.k.links.get(spec.vxlan);
    // in the macvlan layout (no bridge) a VXLAN device still on a bridge cannot take macvlans
    const keep = vx !== undefined && !vxlanIncompat(vx.kind, vx.vxlan, spec) && !(bridge === undefined && vx.masterIndex !== undefined);
    if (keep && vx?.vxlan) {
      const change = vxlanChanges(vx.vxlan, spec);
      const what = describeVxlanChanges(vx.vxlan, change);
      if (what) {
        this.k.hit('setLink');
        if (change.local !== undefined) vx.vxlan.local = change.local;
        if (change.link !== undefined) vx.vxlan.link = change.link;
        if (change.learningOff) vx.vxlan.learning = false;
        this.k.calls.push(`setLink ${vx.name} ${what}`);
      }
      this.k.setLink(vx, { ...(bridge ? { masterIndex: bridge.index } : {}), mtu: spec.mtu, up: true });
    } else {
      if (vx) this.k.removeLink(spec.vxlan);
      const family = canonicalIp(spec.local)?.family ?? 4;
      const owner = [...this.k.links.values()].find(
        (l) =>
          l.vxlan &&
          l.vxlan.vni === spec.vni &&
          l.vxlan.port === spec.port &&
          (canonicalIp(l.vxlan.local ?? '')?.family ?? 4) === family,
      );
      if (owner) {
        throw kernel('create vxlan', spec.vxlan, 'EEXIST', `VNI ${spec.vni} on UDP port ${spec.port} is already used by ${owner.name}`);
      }
      const vxlan: VxlanState = {
        vni: spec.vni,
        port: spec.port,
        local: spec.local,
        link: spec.underlayIndex,
        learning: false,
        proxy: true,
        l2miss: false,
        l3miss: false,
      };
      if (spec.group !== undefined) vxlan.group = spec.group;
      vx = this.k.createLink(
        { name: spec.vxlan, kind: 'vxlan', mtu: spec.mtu, up: true, ...(bridge ? { masterIndex: bridge.index } : {}), vxlan },
        'create vxlan',
      );
    }
    return { created: !keep, vx };
  }

  /** A macvlan on `lower`: converged in place, or recreated if it is something else or elsewhere. */
  private ensureMacvlan(name: string, lower: FakeLink, want: { mtu: number; up?: boolean; mac?: string }): void {
    const found = this.k.links.get(name);
    if (found?.kind === 'macvlan' && found.lowerIndex === lower.index) return this.k.setLink(found, want);
    if (found) this.k.removeLink(name);
    const link = this.k.createLink({ name, kind: 'macvlan', mtu: want.mtu, up: want.up === true, lowerIndex: lower.index }, 'create macvlan');
    if (want.mac !== undefined) link.mac = want.mac;
  }

  async ensureEndpoint(input: EndpointDevices): Promise<void> {
    this.k.calls.push(`ensureEndpoint ${endpointHostIf(input) ?? input.containerIf}`);
    this.k.hit('ensureEndpoint');
    const spec = checkEndpointSpec(input);
    switch (spec.layout) {
      case 'macvlan': {
        const lower = this.k.links.get(spec.vxlan);
        if (lower?.kind !== 'vxlan') {
          throw new TsoverlayError('KERNEL_FAILURE', `ensure endpoint ${spec.containerIf}: vxlan device ${spec.vxlan} does not exist`);
        }
        return this.ensureMacvlan(spec.containerIf, lower, { mtu: spec.mtu, mac: spec.mac });
      }
      case 'bridge':
        return this.ensureVeth(spec);
      default: {
        const never: never = spec;
        throw new TsoverlayError('INVALID_OPTION', `unknown layout ${JSON.stringify(never)}`);
      }
    }
  }

  private ensureVeth(spec: VethEndpointDevices): void {
    const bridge = this.k.links.get(spec.bridge);
    if (bridge?.kind !== 'bridge') {
      throw new TsoverlayError('KERNEL_FAILURE', `ensure endpoint ${spec.hostIf}: bridge ${spec.bridge} does not exist`);
    }
    const host = this.k.links.get(spec.hostIf);
    if (host?.kind === 'veth') {
      this.k.setLink(host, { masterIndex: bridge.index, mtu: spec.mtu, up: true });
      const peer = this.k.links.get(spec.containerIf);
      if (peer?.kind === 'veth') this.k.setLink(peer, { mtu: spec.mtu, mac: spec.mac });
      return;
    }
    if (host) this.k.removeLink(spec.hostIf);
    if (this.k.links.has(spec.containerIf)) this.k.removeLink(spec.containerIf);
    this.k.createLink(
      { name: spec.hostIf, kind: 'veth', mtu: spec.mtu, up: true, masterIndex: bridge.index, peer: spec.containerIf },
      'create veth',
    );
    this.k.insert({ name: spec.containerIf, kind: 'veth', mtu: spec.mtu, up: false, mac: spec.mac, peer: spec.hostIf });
    this.k.calls.push(`createLink ${spec.containerIf}`);
  }

  async deleteLink(name: string): Promise<boolean> {
    this.k.calls.push(`deleteLink ${name}`);
    this.k.hit('deleteLink');
    if (!this.k.links.has(name)) return false;
    this.k.removeLink(name);
    return true;
  }
}
