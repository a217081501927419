/**
 * FakeDataplane: an in-memory kernel with the semantics of `NetlinkDataplane`
 * (the contract suite in test/contract/dataplane.test.ts runs the same
 * assertions against both). Ensures are idempotent, incompatible devices are
 * recreated, a VNI+port already used by another VXLAN device is a
 * KERNEL_CONFLICT, a VXLAN MTU above the underlay's allows is a
 * KERNEL_FAILURE (EINVAL), deleting one veth end removes both, deleting a
 * bridge releases its ports, deleting a VXLAN device deletes the macvlans
 * on it (in sandboxes too). Forwarding entries (FDB, neighbours) live on
 * their VXLAN device: deleting or recreating the device drops them; a
 * unicast MAC has one dst (a new one replaces it), the all-zero MAC collects
 * dsts; calls on a missing device are KERNEL_FAILURE.
 * Resolver routing: addresses live on their device (and vanish with it), one
 * rule per source+priority, table routes keyed by dst (a new dev/src replaces
 * the route; routes vanish with their device; `src` must be an address of the
 * host, the device up: else EINVAL / ENETDOWN as the kernel answers).
 *
 * For assertions:
 * - `links`: every visible device by name (`masterIndex` points at the bridge).
 * - `calls`: the mutating calls, in order — API calls
 *   (`ensureNetwork <bridge>`, `ensureEndpoint <hostIf>`, `deleteLink <name>`,
 *   `addFdb|deleteFdb <vxlan> <mac> <dst>`, `addNeigh|deleteNeigh <vxlan> <ip> <mac>`)
 *   and the kernel changes they made (`createLink <name>`,
 *   `setLink <name> <what>`, `removeLink <name>`, `setFdb|removeFdb <vxlan> <mac> <dst>`,
 *   `setNeigh|removeNeigh <vxlan> <ip> <mac>`, `addAddress <dev> <ip>`,
 *   `addRule|removeRule <source> <table> <priority>`,
 *   `setRoute <table> <dst> <dev> [src]`, `removeRoute <table> <dst> <dev>`;
 *   the resolver API calls log as `ensureBridgeAddress <bridge> <ip>`,
 *   `ensureSourceRule <source> <table> <priority>`,
 *   `ensureTableRoute|deleteTableRoute <table> <dst> <dev>`). `changes()` returns only the
 *   latter, so "a second ensure changed nothing" is
 *   `t.same(fake.changes(), before)`.
 * - `rules`, `tables`: the policy rules and table routes (see `FakeRule`).
 * - `failNext(point, error)`: the next call of that method (or kernel step)
 *   throws `error`.
 */
import { TsoverlayError } from '../errors.js';
import { canonicalIp } from './addr.js';
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
import { KernelError, kernelFailure } from './kernel-error.js';
import { MACVLAN_BC_INLINE, MACVLAN_MODE_BRIDGE } from './linux.js';
import { isValidIfname, OWNED_PREFIX } from './names.js';
import {
  checkHostAddress,
  checkRoutingDevice,
  checkRulePriority,
  checkTable,
  checkTableRoute,
  sortAddresses,
  sortTableRoutes,
} from './routing-spec.js';
import {
  checkEndpointSpec,
  checkFdbEntry,
  checkForwardingDevice,
  checkNeighEntry,
  checkNetworkSpec,
  checkVxlanMtu,
  maxVxlanMtu,
  sortForwarding,
  describeVxlanChanges,
  type VxlanState,
  vxlanChanges,
  vxlanIncompat,
  ZERO_MAC,
} from './spec.js';

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

const KERNEL_CHANGES = /^(createLink|setLink|removeLink|setFdb|removeFdb|setNeigh|removeNeigh|addAddress|addRule|removeRule|setRoute|removeRoute) /;

const kernel = (operation: string, device: string, errno: string, detail?: string): TsoverlayError =>
  kernelFailure(operation, device, new KernelError(errno, `Request rejected: ${errno}`), detail);

/** A fake VXLAN device's entries, as the kernel would list them. */
const forwardingOf = (dev: FakeLink): Forwarding => {
  const fdb: FdbEntry[] = [];
  for (const [mac, dsts] of dev.fdb ?? []) for (const dst of dsts) fdb.push({ mac, dst });
  const neigh = [...(dev.neigh ?? [])].map(([ip, mac]) => ({ ip, mac }));
  return sortForwarding({ fdb, neigh });
};

export class FakeDataplane implements Dataplane {
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
  /** Whether the host has a default route; tests may flip it. */
  defaultRoute: boolean;
  closed = false;
  private readonly addresses: { address: string; family: 4 | 6 }[];
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

  // ---------------------------------------------------------------- Dataplane

  async resolveUnderlay(advertise: string | undefined): Promise<Underlay> {
    this.hit('resolveUnderlay');
    if (advertise === undefined) {
      if (!this.defaultRoute) throw invalid('no default route on this host; set --advertise to an IP or interface name');
      return { ...this.underlay };
    }
    const ip = canonicalIp(advertise);
    if (ip) {
      const held = this.addresses.find((a) => a.address === ip.address);
      if (!held) throw invalid(`--advertise ${advertise}: no interface on this host holds that address`);
      return { ...this.underlay, ...held };
    }
    if (!isValidIfname(advertise)) throw invalid(`--advertise ${advertise}: not an IP address or interface name`);
    if (advertise !== this.underlay.ifname) {
      throw invalid(`--advertise ${advertise}: no such interface on this host, and not an IP address`);
    }
    const first = this.addresses.find((a) => a.family === 4) ?? this.addresses.find((a) => a.family === 6);
    return { ...this.underlay, ...first };
  }

  async listOwnedLinks(): Promise<ObservedLink[]> {
    this.hit('listOwnedLinks');
    const byIndex = new Map([...this.links.values()].map((l) => [l.index, l.name]));
    return [...this.links.values()]
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
          const { vni, port, local, link, group, learning, proxy } = l.vxlan;
          o.vxlan = { vni, port, learning, proxy };
          if (local !== undefined) o.vxlan.local = local;
          if (link !== undefined) o.vxlan.link = link;
          if (group !== undefined) o.vxlan.group = group;
        }
        return o;
      });
  }

  async ensureNetwork(input: NetworkDevices): Promise<boolean> {
    this.calls.push(`ensureNetwork ${input.bridge}`);
    this.hit('ensureNetwork');
    const spec = checkNetworkSpec(input);
    checkVxlanMtu(spec, spec.underlayIndex === this.underlay.ifindex ? { name: this.underlay.ifname, mtu: this.underlay.mtu } : undefined);

    let bridge = this.links.get(spec.bridge);
    const macvlan = spec.mode === 'macvlan';
    if (bridge && bridge.kind !== (macvlan ? 'macvlan' : 'bridge')) {
      this.removeLink(spec.bridge);
      bridge = undefined;
    }
    if (!macvlan) bridge ??= this.createLink({ name: spec.bridge, kind: 'bridge', mtu: spec.mtu, up: true }, 'create bridge');

    let vx = this.links.get(spec.vxlan);
    // in macvlan mode a VXLAN device still on a bridge cannot take macvlans
    const keep = vx !== undefined && !vxlanIncompat(vx.kind, vx.vxlan, spec) && !(macvlan && vx.masterIndex !== undefined);
    if (keep && vx?.vxlan) {
      const change = vxlanChanges(vx.vxlan, spec);
      const what = describeVxlanChanges(vx.vxlan, change);
      if (what) {
        this.hit('setLink');
        if (change.local !== undefined) vx.vxlan.local = change.local;
        if (change.link !== undefined) vx.vxlan.link = change.link;
        if (change.learningOff) vx.vxlan.learning = false;
        this.calls.push(`setLink ${vx.name} ${what}`);
      }
      this.setLink(vx, { ...(bridge && !macvlan ? { masterIndex: bridge.index } : {}), mtu: spec.mtu, up: true });
    } else {
      if (vx) this.removeLink(spec.vxlan);
      const family = canonicalIp(spec.local)?.family ?? 4;
      const owner = [...this.links.values()].find(
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
      vx = this.createLink(
        { name: spec.vxlan, kind: 'vxlan', mtu: spec.mtu, up: true, ...(bridge && !macvlan ? { masterIndex: bridge.index } : {}), vxlan },
        'create vxlan',
      );
    }
    const mac = spec.bridgeMac ? { mac: spec.bridgeMac } : {};
    if (macvlan) this.ensureMacvlan(spec.bridge, vx, { mtu: spec.mtu, up: true, ...mac });
    else if (bridge) this.setLink(bridge, { mtu: spec.mtu, up: true, ...mac });
    return !keep;
  }

  /** A macvlan on `lower`: converged in place, or recreated if it is something else or elsewhere. */
  private ensureMacvlan(name: string, lower: FakeLink, want: { mtu: number; up?: boolean; mac?: string }): void {
    const found = this.links.get(name);
    if (found?.kind === 'macvlan' && found.lowerIndex === lower.index) return this.setLink(found, want);
    if (found) this.removeLink(name);
    const link = this.createLink({ name, kind: 'macvlan', mtu: want.mtu, up: want.up === true, lowerIndex: lower.index }, 'create macvlan');
    if (want.mac !== undefined) link.mac = want.mac;
  }

  async ensureEndpoint(input: EndpointDevices): Promise<void> {
    this.calls.push(`ensureEndpoint ${input.hostIf}`);
    this.hit('ensureEndpoint');
    const spec = checkEndpointSpec(input);
    if (spec.macvlanOn !== undefined) {
      const lower = this.links.get(spec.macvlanOn);
      if (lower?.kind !== 'vxlan') {
        throw new TsoverlayError('KERNEL_FAILURE', `ensure endpoint ${spec.containerIf}: vxlan device ${spec.macvlanOn} does not exist`);
      }
      return this.ensureMacvlan(spec.containerIf, lower, { mtu: spec.mtu, mac: spec.mac });
    }
    const bridge = this.links.get(spec.bridge);
    if (bridge?.kind !== 'bridge') {
      throw new TsoverlayError('KERNEL_FAILURE', `ensure endpoint ${spec.hostIf}: bridge ${spec.bridge} does not exist`);
    }
    const host = this.links.get(spec.hostIf);
    if (host?.kind === 'veth') {
      this.setLink(host, { masterIndex: bridge.index, mtu: spec.mtu, up: true });
      const peer = this.links.get(spec.containerIf);
      if (peer?.kind === 'veth') this.setLink(peer, { mtu: spec.mtu, mac: spec.mac });
      return;
    }
    if (host) this.removeLink(spec.hostIf);
    if (this.links.has(spec.containerIf)) this.removeLink(spec.containerIf);
    this.createLink(
      { name: spec.hostIf, kind: 'veth', mtu: spec.mtu, up: true, masterIndex: bridge.index, peer: spec.containerIf },
      'create veth',
    );
    this.insert({ name: spec.containerIf, kind: 'veth', mtu: spec.mtu, up: false, mac: spec.mac, peer: spec.hostIf });
    this.calls.push(`createLink ${spec.containerIf}`);
  }

  async deleteLink(name: string): Promise<boolean> {
    this.calls.push(`deleteLink ${name}`);
    this.hit('deleteLink');
    if (!this.links.has(name)) return false;
    this.removeLink(name);
    return true;
  }

  async addForwarding(vxlan: string, entries: Forwarding): Promise<ForwardingFailure[]> {
    this.vxlanDevice('add forwarding', vxlan);
    const failures: ForwardingFailure[] = [];
    for (const entry of entries.fdb) await this.addFdb(vxlan, entry).catch((error: Error) => failures.push({ kind: 'fdb', entry, error }));
    for (const entry of entries.neigh) await this.addNeigh(vxlan, entry).catch((error: Error) => failures.push({ kind: 'neigh', entry, error }));
    return failures;
  }

  async listAllForwarding(): Promise<Map<number, Forwarding>> {
    this.hit('listForwarding');
    const out = new Map<number, Forwarding>();
    for (const link of this.links.values()) if (link.kind === 'vxlan') out.set(link.index, forwardingOf(link));
    return out;
  }

  async listForwarding(vxlan: string): Promise<Forwarding> {
    this.hit('listForwarding');
    return forwardingOf(this.vxlanDevice('list forwarding', vxlan));
  }

  async addFdb(vxlan: string, input: FdbEntry): Promise<void> {
    this.calls.push(`addFdb ${vxlan} ${input.mac} ${input.dst}`);
    this.hit('addFdb');
    checkForwardingDevice(vxlan);
    checkFdbEntry(vxlan, input, undefined);
    const dev = this.vxlanDevice('add fdb', vxlan);
    const entry = checkFdbEntry(vxlan, input, localFamily(dev));
    dev.fdb ??= new Map();
    const dsts = dev.fdb.get(entry.mac) ?? new Set<string>();
    if (dsts.has(entry.dst) && (entry.mac === ZERO_MAC || dsts.size === 1)) return;
    if (entry.mac !== ZERO_MAC) {
      for (const old of dsts) this.calls.push(`removeFdb ${vxlan} ${entry.mac} ${old}`);
      dsts.clear(); // replace: a unicast MAC has one dst
    }
    dsts.add(entry.dst);
    dev.fdb.set(entry.mac, dsts);
    this.calls.push(`setFdb ${vxlan} ${entry.mac} ${entry.dst}`);
  }

  async deleteFdb(vxlan: string, input: FdbEntry): Promise<boolean> {
    this.calls.push(`deleteFdb ${vxlan} ${input.mac} ${input.dst}`);
    this.hit('deleteFdb');
    checkForwardingDevice(vxlan);
    const entry = checkFdbEntry(vxlan, input, undefined);
    const dev = this.vxlanDevice('delete fdb', vxlan);
    const dsts = dev.fdb?.get(entry.mac);
    if (!dsts?.delete(entry.dst)) return false;
    if (dsts.size === 0) dev.fdb?.delete(entry.mac);
    this.calls.push(`removeFdb ${vxlan} ${entry.mac} ${entry.dst}`);
    return true;
  }

  async addNeigh(vxlan: string, input: NeighEntry): Promise<void> {
    this.calls.push(`addNeigh ${vxlan} ${input.ip} ${input.mac}`);
    this.hit('addNeigh');
    checkForwardingDevice(vxlan);
    const { ip, mac } = checkNeighEntry(vxlan, input);
    const dev = this.vxlanDevice('add neighbour', vxlan);
    dev.neigh ??= new Map();
    if (dev.neigh.get(ip) === mac) return;
    dev.neigh.set(ip, mac);
    this.calls.push(`setNeigh ${vxlan} ${ip} ${mac}`);
  }

  async deleteNeigh(vxlan: string, input: NeighEntry): Promise<boolean> {
    this.calls.push(`deleteNeigh ${vxlan} ${input.ip} ${input.mac}`);
    this.hit('deleteNeigh');
    checkForwardingDevice(vxlan);
    const { ip, mac } = checkNeighEntry(vxlan, input);
    const dev = this.vxlanDevice('delete neighbour', vxlan);
    // Only while it still maps to this MAC (a reused IP's newer entry stays).
    if (dev.neigh?.get(ip) !== mac) return false;
    dev.neigh.delete(ip);
    this.calls.push(`removeNeigh ${vxlan} ${ip} ${mac}`);
    return true;
  }

  /** Addresses on the loopback device. */
  readonly localAddresses = new Set<string>();

  async ensureLocalAddress(address: string): Promise<void> {
    this.calls.push(`ensureLocalAddress ${address}`);
    this.localAddresses.add(address);
  }

  async ensureBridgeAddress(bridge: string, address: string): Promise<void> {
    this.calls.push(`ensureBridgeAddress ${bridge} ${address}`);
    this.hit('ensureBridgeAddress');
    checkRoutingDevice('bridge', bridge);
    const ip = checkHostAddress(`address for ${bridge}`, address);
    const link = this.links.get(bridge);
    if (!link) throw new TsoverlayError('KERNEL_FAILURE', `ensure bridge address ${bridge}: no such bridge`);
    if (link.kind !== 'bridge' && link.kind !== 'macvlan') {
      throw new TsoverlayError('KERNEL_FAILURE', `ensure bridge address ${bridge}: not a bridge (kind ${link.kind || 'none'})`);
    }
    link.addresses ??= new Set();
    if (link.addresses.has(ip.address)) return;
    link.addresses.add(ip.address);
    this.calls.push(`addAddress ${bridge} ${ip.address}`);
  }

  async ensureSourceRule(source: string, table: number, priority: number): Promise<void> {
    this.calls.push(`ensureSourceRule ${source} ${table} ${priority}`);
    this.hit('ensureSourceRule');
    const src = checkHostAddress('rule source', source);
    checkTable(table);
    checkRulePriority(priority);
    for (let i = this.rules.length - 1; i >= 0; i--) {
      const r = this.rules[i];
      if (r && r.source === src.address && r.priority === priority && r.table !== table) {
        this.rules.splice(i, 1);
        this.calls.push(`removeRule ${r.source} ${r.table} ${r.priority}`);
      }
    }
    if (this.rules.some((r) => r.source === src.address && r.priority === priority)) return;
    this.rules.push({ source: src.address, table, priority });
    this.calls.push(`addRule ${src.address} ${table} ${priority}`);
  }

  async listTableRoutes(table: number): Promise<TableRoute[]> {
    this.hit('listTableRoutes');
    checkTable(table);
    return sortTableRoutes([...(this.tables.get(table)?.values() ?? [])].map((r) => ({ ...r })));
  }

  async ensureTableRoute(table: number, route: TableRoute): Promise<void> {
    this.calls.push(`ensureTableRoute ${table} ${route.dst} ${route.dev}`);
    this.hit('ensureTableRoute');
    const spec = checkTableRoute(table, route);
    const link = this.links.get(spec.dev);
    if (!link) throw new TsoverlayError('KERNEL_FAILURE', `ensure table route ${spec.dev}: no such device`);
    const detail = `${spec.dst} table ${table}${spec.src === undefined ? '' : ` src ${spec.src}`}`;
    if (!link.up) throw kernel('ensure table route', spec.dev, 'ENETDOWN', detail);
    if (spec.src !== undefined && !this.isLocalAddress(spec.src)) throw kernel('ensure table route', spec.dev, 'EINVAL', detail);
    const want: TableRoute = { dst: spec.dst, dev: spec.dev, ...(spec.src === undefined ? {} : { src: spec.src }) };
    const routes = this.tables.get(table) ?? new Map<string, TableRoute>();
    this.tables.set(table, routes);
    const have = routes.get(spec.dst);
    if (have && have.dev === want.dev && have.src === want.src) return;
    routes.set(spec.dst, want);
    this.calls.push(`setRoute ${table} ${want.dst} ${want.dev}${want.src === undefined ? '' : ` ${want.src}`}`);
  }

  async deleteTableRoute(table: number, route: { dst: string; dev: string }): Promise<boolean> {
    this.calls.push(`deleteTableRoute ${table} ${route.dst} ${route.dev}`);
    this.hit('deleteTableRoute');
    const spec = checkTableRoute(table, route);
    const routes = this.tables.get(table);
    if (routes?.get(spec.dst)?.dev !== spec.dev) return false;
    routes.delete(spec.dst);
    this.calls.push(`removeRoute ${table} ${spec.dst} ${spec.dev}`);
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  // ------------------------------------------------------------ fake kernel

  /** An address of this host: the underlay's or one on a device. */
  private isLocalAddress(ip: string): boolean {
    return this.addresses.some((a) => a.address === ip) || [...this.links.values()].some((l) => l.addresses?.has(ip));
  }

  /** Routes go with their device. */
  private dropRoutesOf(dev: string): void {
    for (const [table, routes] of this.tables) {
      for (const [dst, r] of routes) {
        if (r.dev === dev) routes.delete(dst);
      }
      if (routes.size === 0) this.tables.delete(table);
    }
  }

  /** The VXLAN device of a forwarding call, with the adapter's errors. */
  private vxlanDevice(operation: string, name: string): FakeLink {
    checkForwardingDevice(name);
    const link = this.links.get(name);
    if (!link) throw new TsoverlayError('KERNEL_FAILURE', `${operation} ${name}: no such vxlan device`);
    if (link.kind !== 'vxlan') {
      throw new TsoverlayError('KERNEL_FAILURE', `${operation} ${name}: not a vxlan device (kind ${link.kind || 'none'})`);
    }
    return link;
  }

  private hit(point: FakeFailPoint): void {
    const queued = this.failures.get(point);
    const error = queued?.shift();
    if (queued && queued.length === 0) this.failures.delete(point);
    if (error) throw error;
  }

  private insert(link: Omit<FakeLink, 'index' | 'mac'> & { mac?: string }): FakeLink {
    const index = this.nextIndex++;
    const mac = link.mac ?? `02:00:00:00:${((index >> 8) & 0xff).toString(16).padStart(2, '0')}:${(index & 0xff).toString(16).padStart(2, '0')}`;
    const full: FakeLink = { ...link, index, mac };
    this.links.set(full.name, full);
    return full;
  }

  private createLink(link: Omit<FakeLink, 'index' | 'mac'>, operation: string): FakeLink {
    this.hit('createLink');
    if (this.links.has(link.name)) throw kernel(operation, link.name, 'EEXIST');
    this.calls.push(`createLink ${link.name}`);
    return this.insert(link);
  }

  private setLink(link: FakeLink, want: { mtu?: number; masterIndex?: number; up?: boolean; mac?: string }): void {
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

  private removeLink(name: string): void {
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

const invalid = (message: string): TsoverlayError => new TsoverlayError('INVALID_OPTION', message);

const localFamily = (link: FakeLink): 4 | 6 | undefined =>
  link.vxlan?.local === undefined ? undefined : canonicalIp(link.vxlan.local)?.family;
