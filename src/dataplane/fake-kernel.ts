/**
 * The state of the fake kernel behind `FakeDataplane` (fake-dataplane.ts
 * says what it models): the devices, the policy rules and table routes,
 * the log of calls, the queued failures, and the kernel steps (create, set,
 * remove a link) the fake concern modules share.
 */
import { TsoverlayError } from '../errors.js';
import type { TableRoute, Underlay } from './dataplane.js';
import { canonicalIp } from './netlink/addr.js';
import { KernelError, kernelFailure } from './netlink/kernel-error.js';
import type { VxlanState } from './netlink/link-message.js';
import { checkForwardingDevice } from './spec.js';
import { maxVxlanMtu } from './vxlan-mtu.js';

export interface FakeLink {
  name: string;
  index: number;
  kind: string;
  mtu: number;
  up: boolean;
  mac: string;
  /** Index of the master device (a bridge), if enslaved. */
  masterIndex?: number;
  /** Name of the other end, for veth. */
  peer?: string;
  /** Index of the lower device, for macvlan (always in bridge mode here). */
  lowerIndex?: number;
  vxlan?: VxlanState;
  /** VXLAN devices: FDB dsts by MAC (one for a unicast MAC, any number for the all-zero MAC). */
  fdb?: Map<string, Set<string>>;
  /** VXLAN devices: permanent neighbour entries, MAC by IP. */
  neigh?: Map<string, string>;
  /** Addresses on the device (bare, canonical). */
  addresses?: Set<string>;
}

/** A policy rule "from `source` lookup `table`" at `priority`. */
export interface FakeRule {
  source: string;
  table: number;
  priority: number;
}

export type FakeFailPoint =
  | 'resolveUnderlay'
  | 'listOwnedLinks'
  | 'ensureNetwork'
  | 'ensureEndpoint'
  | 'deleteLink'
  | 'listForwarding'
  | 'addFdb'
  | 'deleteFdb'
  | 'addNeigh'
  | 'deleteNeigh'
  | 'ensureBridgeAddress'
  | 'ensureSourceRule'
  | 'listTableRoutes'
  | 'ensureTableRoute'
  | 'deleteTableRoute'
  | 'createLink'
  | 'setLink'
  | 'removeLink';

export interface FakeDataplaneOptions {
  /** The host's underlay interface. Default eth0 (index 2), 10.0.0.2, MTU 1500. */
  underlay?: Underlay | undefined;
  /** More addresses held by the underlay interface (IPv4 or IPv6). */
  addresses?: string[] | undefined;
  /** Whether the host has a default route (through the underlay). Default true. */
  defaultRoute?: boolean | undefined;
}

export const DEFAULT_FAKE_UNDERLAY: Underlay = { ifname: 'eth0', ifindex: 2, address: '10.0.0.2', family: 4, mtu: 1500 };

const KERNEL_CHANGES = /^(createLink|setLink|removeLink|setFdb|removeFdb|setNeigh|removeNeigh|addAddress|removeAddress|addRule|removeRule|setRoute|removeRoute) /;

export const kernel = (operation: string, device: string, errno: string, detail?: string): TsoverlayError =>
  kernelFailure(operation, device, new KernelError(errno, `Request rejected: ${errno}`), detail);

export class FakeKernel {
  readonly underlay: Underlay;
  /** Visible devices by name. */
  readonly links = new Map<string, FakeLink>();
  /** Container ends moved into a sandbox by `moveToSandbox`, by name. */
  readonly sandboxed = new Map<string, FakeLink>();
  readonly calls: string[] = [];
  /** Policy rules, in the order added. */
  readonly rules: FakeRule[] = [];
  /** Table routes: by table, then by dst. */
  readonly tables = new Map<number, Map<string, TableRoute>>();
  /** Addresses on the loopback device. */
  readonly localAddresses = new Set<string>();
  /** Whether the host has a default route; tests may flip it. */
  defaultRoute: boolean;
  closed = false;
  /** The addresses of the underlay interface. */
  readonly addresses: { address: string; family: 4 | 6 }[];
  private readonly failures = new Map<FakeFailPoint, Error[]>();
  private nextIndex = 10;

  constructor(options: FakeDataplaneOptions = {}) {
    this.underlay = { ...(options.underlay ?? DEFAULT_FAKE_UNDERLAY) };
    this.defaultRoute = options.defaultRoute ?? true;
    this.addresses = [this.underlay.address, ...(options.addresses ?? [])].map((a) => {
      const c = canonicalIp(a);
      if (!c) throw new Error(`FakeDataplane: "${a}" is not an IP address`);
      return c;
    });
    this.nextIndex = Math.max(this.nextIndex, this.underlay.ifindex + 1);
  }

  /** Make the next call of `point` throw `error` (queued: several calls fail in order). */
  failNext(point: FakeFailPoint, error: Error): void {
    this.failures.set(point, [...(this.failures.get(point) ?? []), error]);
  }

  /** The kernel-level changes so far (`createLink`, `setLink`, `removeLink` entries of `calls`). */
  changes(): string[] {
    return this.calls.filter((c) => KERNEL_CHANGES.test(c));
  }

  /** What Docker does at Join: the container end leaves this namespace. */
  moveToSandbox(containerIf: string): void {
    const link = this.links.get(containerIf);
    if (!link) throw new Error(`FakeDataplane.moveToSandbox: no device ${containerIf}`);
    this.links.delete(containerIf);
    this.sandboxed.set(containerIf, link);
  }

  /** A veth pair created behind our back (e.g. left over by a crash), for tests. */
  addVethPair(name: string, peer: string): void {
    for (const [a, b] of [
      [name, peer],
      [peer, name],
    ] as const) {
      if (this.links.has(a)) throw new Error(`FakeDataplane.addVethPair: ${a} exists`);
      this.insert({ name: a, kind: 'veth', mtu: 1500, up: false, peer: b });
    }
  }

  /** An address of this host: the underlay's or one on a device. */
  isLocalAddress(ip: string): boolean {
    return this.addresses.some((a) => a.address === ip) || [...this.links.values()].some((l) => l.addresses?.has(ip));
  }

  /** Routes go with their device. */
  dropRoutesOf(dev: string): void {
    for (const [table, routes] of this.tables) {
      for (const [dst, r] of routes) {
        if (r.dev === dev) routes.delete(dst);
      }
      if (routes.size === 0) this.tables.delete(table);
    }
  }

  /** The VXLAN device of a forwarding call, with the adapter's errors. */
  vxlanDevice(operation: string, name: string): FakeLink {
    checkForwardingDevice(name);
    const link = this.links.get(name);
    if (!link) throw new TsoverlayError('KERNEL_FAILURE', `${operation} ${name}: no such vxlan device`);
    if (link.kind !== 'vxlan') {
      throw new TsoverlayError('KERNEL_FAILURE', `${operation} ${name}: not a vxlan device (kind ${link.kind || 'none'})`);
    }
    return link;
  }

  hit(point: FakeFailPoint): void {
    const queued = this.failures.get(point);
    const error = queued?.shift();
    if (queued && queued.length === 0) this.failures.delete(point);
    if (error) throw error;
  }

  insert(link: Omit<FakeLink, 'index' | 'mac'> & { mac?: string }): FakeLink {
    const index = this.nextIndex++;
    const mac = link.mac ?? `02:00:00:00:${((index >> 8) & 0xff).toString(16).padStart(2, '0')}:${(index & 0xff).toString(16).padStart(2, '0')}`;
    const full: FakeLink = { ...link, index, mac };
    this.links.set(full.name, full);
    return full;
  }

  createLink(link: Omit<FakeLink, 'index' | 'mac'>, operation: string): FakeLink {
    this.hit('createLink');
    if (this.links.has(link.name)) throw kernel(operation, link.name, 'EEXIST');
    this.calls.push(`createLink ${link.name}`);
    return this.insert(link);
  }

  setLink(link: FakeLink, want: { mtu?: number; masterIndex?: number; up?: boolean; mac?: string }): void {
    const what: string[] = [];
    if (want.mtu !== undefined && want.mtu !== link.mtu) what.push(`mtu=${want.mtu}`);
    if (want.masterIndex !== undefined && want.masterIndex !== link.masterIndex) what.push(`master=${want.masterIndex}`);
    if (want.mac !== undefined && want.mac !== link.mac) what.push(`mac=${want.mac}`);
    if (want.up === true && !link.up) what.push('up');
    if (what.length === 0) return;
    this.hit('setLink');
    if (link.vxlan && want.mtu !== undefined) {
      const family = canonicalIp(link.vxlan.local ?? '')?.family ?? 4;
      if (want.mtu > maxVxlanMtu(this.underlay.mtu, family)) throw kernel('set link', link.name, 'EINVAL');
    }
    if (want.mtu !== undefined) link.mtu = want.mtu;
    if (want.masterIndex !== undefined) link.masterIndex = want.masterIndex;
    if (want.mac !== undefined) link.mac = want.mac;
    if (want.up === true) link.up = true;
    this.calls.push(`setLink ${link.name} ${what.join(' ')}`);
  }

  removeLink(name: string): void {
    this.hit('removeLink');
    const link = this.links.get(name);
    if (!link) throw kernel('delete link', name, 'ENODEV');
    this.links.delete(name);
    this.calls.push(`removeLink ${name}`);
    this.dropRoutesOf(name);
    if (link.peer !== undefined) {
      // Deleting one veth end removes both, wherever the other end lives.
      this.links.delete(link.peer);
      this.sandboxed.delete(link.peer);
      this.dropRoutesOf(link.peer);
    }
    if (link.kind === 'bridge') {
      for (const port of this.links.values()) if (port.masterIndex === link.index) delete port.masterIndex;
    }
    if (link.kind === 'vxlan') {
      // its macvlans go with it, wherever they live
      for (const where of [this.links, this.sandboxed]) {
        for (const [n, l] of where) {
          if (l.lowerIndex !== link.index) continue;
          where.delete(n);
          this.dropRoutesOf(n);
        }
      }
    }
  }
}
