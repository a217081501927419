/**
 * The VXLAN forwarding entries (FDB and neighbour), over rtnetlink: the
 * forwarding concern of `NetlinkDataplane` (every request goes through the
 * adapter's request queue, netlink/lane.ts). A little over 400 lines: the
 * add, list and delete paths share the device lookup cache and the batch
 * writer, and splitting them would spread that cache over files.
 *
 * How it works
 * - `learning off`: the kernel must not learn remote MACs from received
 *   frames. Peers' MACs are programmed as static FDB entries (MAC -> peer
 *   VTEP) and permanent neighbour entries from the cluster store, so the data
 *   path keeps working while the daemon restarts and never floods to learn.
 * - `proxy on`: the VXLAN device answers ARP/ND requests from its neighbour
 *   table instead of flooding them to every peer; with permanent neighbour
 *   entries every lookup of a known container is answered locally.
 *   `l2miss`/`l3miss` stay off: we do not depend on miss notifications.
 *   With proxy on, ARP requests and neighbour solicitations are never
 *   flooded: an address without a neighbour entry does not resolve at all.
 * - Per container on another node, on the network's VXLAN device:
 *   - a permanent neighbour entry IP -> MAC (IPv4 and IPv6), for the proxy;
 *   - a static FDB entry MAC -> that node's VTEP IP (`self`, `permanent`,
 *     written with CREATE|REPLACE: one dst per MAC, a replay is harmless).
 *   Per other node of the network: one FDB entry for the all-zero MAC with
 *   that node as dst (CREATE|APPEND: the all-zero MAC collects one dst per
 *   node). Broadcast, multicast and unknown-unicast frames are copied to every
 *   such dst (head-end replication). Optionally (`group`) the device also
 *   sends them to a multicast group on the underlay; the kernel keeps that as
 *   an all-zero entry with the group as dst, which `listForwarding` leaves out.
 *
 * Netlink notes
 * - FDB entries are neighbour messages of family AF_BRIDGE (7) with NTF_SELF
 *   (else they would go to the bridge the VXLAN device is enslaved to);
 *   NDA_LLADDR = MAC, NDA_DST = remote VTEP.
 * - Adds (addFdb, addNeigh, addForwarding) are written by hand and sent many
 *   to a `sendmsg` (netlink/neigh-batch.ts); answers to reads are read by hand
 *   (netlink/neigh-message.ts); deletes and the read requests are the package's.
 * - Dump filters (the package does not set NETLINK_GET_STRICT_CHK, so the
 *   kernel parses requests the legacy way): the neighbour dump takes an
 *   NDA_IFINDEX attribute; the FDB dump only filters by port when the request
 *   header is a 16-byte `struct ifinfomsg` (ifi_index = port), so that one is
 *   sent raw. Both results are filtered by ifindex again here, in case a
 *   kernel ignores the filter.
 * - RTM_DELNEIGH on a VXLAN FDB entry whose MAC exists but has no such dst
 *   answers success and deletes nothing; RTM_DELNEIGH of a neighbour deletes
 *   whatever MAC it has. Deletes therefore read the entry first, so the
 *   boolean is right and a newer entry for a reused IP is not removed.
 */
import { AttrStream, type RequestOptions, type RtNetlinkSocket, rt } from 'netlink';
import { TsoverlayError } from '../errors.js';
import { canonicalIp, ipToBytes, macToBytes } from './netlink/addr.js';
import { type FdbEntry, FLOOD_MAC, type Forwarding, type ForwardingFailure, type NeighEntry } from './dataplane.js';
import { errnoOf, kernelFailure } from './netlink/kernel-error.js';
import { neighBody, type NeighRequest, sendNeighRequests } from './netlink/neigh-batch.js';
import type { Exec, TimedOptions } from './netlink/lane.js';
import { parseFdb, parseNeigh } from './netlink/neigh-message.js';
import { rawAnswers } from './netlink/raw-answers.js';
import { checkFdbEntry, checkForwardingDevice, checkNeighEntry, sortForwarding } from './spec.js';
import {
  AF_BRIDGE,
  AF_INET,
  AF_INET6,
  NLM_F_APPEND,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_REPLACE,
  NTF_SELF,
  RTM_GETNEIGH,
  RTM_NEWNEIGH,
} from './netlink/linux.js';

/** How long a forwarding call trusts the ifindex an earlier one looked up. */
export const VXLAN_TARGET_TTL_MS = 1000;

/** What the forwarding calls need from `NetlinkDataplane`. */
export interface ForwardingKernel {
  exec: Exec;
  /** One RTM_GETLINK by name; undefined if there is no such device. */
  findLink(name: string): Promise<{ index: number; kind: string; vxlan?: { local?: string } } | undefined>;
}

/** A neighbour read; its answers' payloads unparsed, for parseFdb / parseNeigh. */
const neighAnswers = (s: RtNetlinkSocket, body: Uint8Array[], o: TimedOptions & { flags?: number }): Promise<Buffer[]> =>
  rawAnswers(s, RTM_GETNEIGH, body, RTM_NEWNEIGH, o);

const neighRequest = (data: rt.Neighbor, attrs: rt.NeighborAttrs): Uint8Array[] => {
  const out = new AttrStream();
  rt.formatNeighborMessage({ kind: 'neighbor', data, attrs }, out);
  return out.bufs;
};

/** The VXLAN device a forwarding call works on. */
interface VxlanTarget {
  name: string;
  index: number;
  /** Family of its `local` address, if it has one. */
  family: 4 | 6 | undefined;
}

export class NetlinkForwarding {
  /** VXLAN devices of recent forwarding calls, by name (see `withVxlan`). */
  private readonly vxlanTargets = new Map<string, { target: VxlanTarget; until: number }>();

  constructor(private readonly k: ForwardingKernel) {}

  /** Drop the remembered device `name`: the adapter is deleting or creating it. */
  forget(name: string): void {
    this.vxlanTargets.delete(name);
  }

  async listForwarding(vxlan: string): Promise<Forwarding> {
    // Fresh lookup: a dump filtered by a stale ifindex is just empty, not ENODEV.
    return this.withVxlan('list forwarding', vxlan, { fresh: true }, async (dev) => {
      const fdb = (await this.dumpFdb(dev)).map(([, e]) => e);
      const neigh = (await this.dumpNeigh(dev)).map(([, e]) => e);
      return sortForwarding({ fdb, neigh });
    });
  }

  async addFdb(vxlan: string, input: FdbEntry): Promise<void> {
    checkForwardingDevice(vxlan);
    checkFdbEntry(vxlan, input, undefined); // a bad entry is INVALID_OPTION before any I/O
    await this.withVxlan('add fdb', vxlan, {}, async (dev) => {
      await this.writeOne(vxlan, fdbWrite(dev.index, checkFdbEntry(vxlan, input, dev.family)));
    });
  }

  /**
   * Many entries on one device: validated first (a bad entry fails alone),
   * then written as one job of the adapter's queue, many requests to a
   * `sendmsg` (see netlink/neigh-batch.ts); the kernel's refusal of one fails that
   * entry alone.
   */
  async addForwarding(vxlan: string, want: Forwarding): Promise<ForwardingFailure[]> {
    checkForwardingDevice(vxlan);
    if (want.fdb.length + want.neigh.length === 0) return [];
    // Entries are checked once the device (and so its family) is known: the
    // lookup changes nothing, and a bad entry fails alone before any write.
    return this.withVxlan('add forwarding', vxlan, {}, async (dev) => {
      const writes: Array<EntryWrite & { fail: (error: Error) => ForwardingFailure }> = [];
      const refused: ForwardingFailure[] = [];
      for (const entry of want.fdb) {
        const fail = (error: Error): ForwardingFailure => ({ kind: 'fdb', entry, error });
        try {
          writes.push({ ...fdbWrite(dev.index, checkFdbEntry(vxlan, entry, dev.family)), fail });
        } catch (error) {
          refused.push(fail(error as Error));
        }
      }
      for (const entry of want.neigh) {
        const fail = (error: Error): ForwardingFailure => ({ kind: 'neigh', entry, error });
        try {
          writes.push({ ...neighWrite(dev.index, checkNeighEntry(vxlan, entry)), fail });
        } catch (error) {
          refused.push(fail(error as Error));
        }
      }
      const kernel = await this.k.exec('add forwarding', vxlan, (s, o) =>
        sendNeighRequests(s, writes.map((w) => w.request), o.timeout),
      );
      for (const [i, error] of kernel) {
        const w = writes[i];
        if (w) refused.push(w.fail(kernelFailure(w.operation, vxlan, error, w.detail)));
      }
      // A device recreated behind our back: withVxlan looks it up again and
      // writes everything once more (REPLACE/APPEND: harmless twice).
      const gone = refused.find((f) => errnoOf(f.error) === 'ENODEV');
      if (gone) throw gone.error;
      return refused;
    });
  }

  async deleteFdb(vxlan: string, input: FdbEntry): Promise<boolean> {
    checkForwardingDevice(vxlan);
    const entry = checkFdbEntry(vxlan, input, undefined);
    // The all-zero MAC's check is a dump: see listForwarding.
    return this.withVxlan('delete fdb', vxlan, { fresh: entry.mac === FLOOD_MAC }, async (dev) => {
      if (dev.family !== undefined && canonicalIp(entry.dst)?.family !== dev.family) return false; // cannot exist
      // The kernel acks a delete of an existing MAC with another dst without
      // deleting anything: look first. The all-zero MAC has several dsts and a
      // single GET shows only the first, so that one takes a (filtered) dump;
      // it changes once per remote node, not per container.
      const present =
        entry.mac === FLOOD_MAC
          ? (await this.dumpFdb(dev)).some(([, e]) => e.mac === entry.mac && e.dst === entry.dst)
          : (await this.getFdb(dev, entry.mac))?.dst === entry.dst;
      if (!present) return false;
      return this.deleteEntry(
        'delete fdb',
        vxlan,
        (s, o) => s.delNeighbor(...fdbDelete(dev.index, entry), o),
        `${entry.mac} dst ${entry.dst}`,
      );
    });
  }

  async addNeigh(vxlan: string, input: NeighEntry): Promise<void> {
    checkForwardingDevice(vxlan);
    const entry = checkNeighEntry(vxlan, input);
    await this.withVxlan('add neighbour', vxlan, {}, (dev) => this.writeOne(vxlan, neighWrite(dev.index, entry)));
  }

  async deleteNeigh(vxlan: string, input: NeighEntry): Promise<boolean> {
    checkForwardingDevice(vxlan);
    const entry = checkNeighEntry(vxlan, input);
    return this.withVxlan('delete neighbour', vxlan, {}, async (dev) => {
      // RTM_DELNEIGH goes by IP alone: only delete it while it still maps to
      // this MAC (an IP reused by a newer container elsewhere must stay).
      if ((await this.getNeigh(dev, entry))?.mac !== entry.mac) return false;
      return this.deleteEntry(
        'delete neighbour',
        vxlan,
        (s, o) => s.delNeighbor(...neighDelete(dev.index, entry), o),
        `${entry.ip} lladdr ${entry.mac}`,
      );
    });
  }

  /**
   * Run `fn` against the VXLAN device `name`. The device (index, local
   * family) is looked up with one RTM_GETLINK and remembered for
   * VXLAN_TARGET_TTL_MS: a burst of entries costs one lookup, not one each
   * (the lookup, a full link message to parse, costs ~4x the entry write).
   * A remembered index that is gone (ENODEV: the device was deleted or
   * recreated behind our back; ifindexes are not reused right away) is
   * looked up again once; the adapter's own deletes and creates forget it at
   * once (`forget`). Only requests that fail with ENODEV on a bad index may
   * use a remembered one (`fresh` otherwise: a dump filtered by a gone index
   * is silently empty).
   */
  private async withVxlan<T>(
    operation: string,
    name: string,
    opts: { fresh?: boolean },
    fn: (dev: VxlanTarget) => Promise<T>,
  ): Promise<T> {
    checkForwardingDevice(name);
    const cached = opts.fresh ? undefined : this.vxlanTargets.get(name);
    const remembered = cached !== undefined && cached.until > performance.now();
    const dev = remembered && cached ? cached.target : await this.lookupVxlan(operation, name);
    try {
      return await fn(dev);
    } catch (e) {
      if (errnoOf(e) !== 'ENODEV') throw e;
      this.vxlanTargets.delete(name);
      if (!remembered) throw noVxlan(operation, name);
      const fresh = await this.lookupVxlan(operation, name);
      try {
        return await fn(fresh);
      } catch (e2) {
        if (errnoOf(e2) !== 'ENODEV') throw e2;
        this.vxlanTargets.delete(name);
        throw noVxlan(operation, name);
      }
    }
  }

  private async lookupVxlan(operation: string, name: string): Promise<VxlanTarget> {
    this.vxlanTargets.delete(name);
    const link = await this.k.findLink(name);
    if (!link) throw noVxlan(operation, name);
    if (link.kind !== 'vxlan') throw notVxlan(operation, name, link.kind);
    const local = link.vxlan?.local === undefined ? undefined : canonicalIp(link.vxlan.local);
    const target: VxlanTarget = { name, index: link.index, family: local?.family };
    this.vxlanTargets.set(name, { target, until: performance.now() + VXLAN_TARGET_TTL_MS });
    return target;
  }

  /** One entry, as a batch of one: the kernel's refusal rejects. */
  private async writeOne(vxlan: string, w: EntryWrite): Promise<void> {
    await this.k.exec(w.operation, vxlan, async (s, o) => {
      const error = (await sendNeighRequests(s, [w.request], o.timeout)).get(0);
      if (error) throw error;
    }, w.detail);
  }

  /** A delete request: true if done, false if the kernel had no such entry (ENOENT). */
  private async deleteEntry(
    operation: string,
    device: string,
    fn: (s: RtNetlinkSocket, o: RequestOptions) => Promise<unknown>,
    detail: string,
  ): Promise<boolean> {
    try {
      await this.k.exec(operation, device, fn, detail);
      return true;
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') return false;
      throw e;
    }
  }

  /**
   * The entries of every device, by ifindex: one FDB dump and one neighbour
   * dump for the whole host, instead of two per device (a full reconcile
   * pass reads hundreds of devices).
   */
  async listAllForwarding(): Promise<Map<number, Forwarding>> {
    const fdb = await this.dumpFdb(undefined);
    const neigh = await this.dumpNeigh(undefined);
    const out = new Map<number, Forwarding>();
    const of = (index: number): Forwarding => {
      let f = out.get(index);
      if (!f) out.set(index, (f = { fdb: [], neigh: [] }));
      return f;
    };
    for (const [index, e] of fdb) of(index).fdb.push(e);
    for (const [index, e] of neigh) of(index).neigh.push(e);
    for (const [index, f] of out) out.set(index, sortForwarding(f));
    return out;
  }

  /** Our FDB entries on the device (filtered by the kernel, see the netlink notes), or on every device. */
  private async dumpFdb(dev: VxlanTarget | undefined): Promise<Array<[number, FdbEntry]>> {
    // struct ifinfomsg: family u8, pad u8, type u16, index s32, flags u32, change u32.
    const header = Buffer.alloc(16);
    header.writeUInt8(AF_BRIDGE, 0);
    header.writeInt32LE(dev?.index ?? 0, 4);
    const msgs = await this.k.exec('dump fdb', dev?.name ?? 'all devices', (s, o) => neighAnswers(s, [header], { ...o, flags: NLM_F_DUMP }));
    const out: Array<[number, FdbEntry]> = [];
    for (const m of msgs) {
      const e = parseFdb(m);
      if (e && (!dev || e[0] === dev.index)) out.push(e);
    }
    return out;
  }

  /** Our neighbour entries (IPv4 and IPv6) on the device (filtered by NDA_IFINDEX), or on every device. */
  private async dumpNeigh(dev: VxlanTarget | undefined): Promise<Array<[number, NeighEntry]>> {
    const ifindex = dev && Buffer.from(Uint32Array.of(dev.index).buffer); // NDA_IFINDEX, host byte order
    const msgs = await this.k.exec('dump neighbours', dev?.name ?? 'all devices', (s, o) =>
      neighAnswers(s, neighRequest({}, ifindex ? { ifindex } : {}), { ...o, flags: NLM_F_DUMP }),
    );
    const out: Array<[number, NeighEntry]> = [];
    for (const m of msgs) {
      const e = parseNeigh(m);
      if (e && (!dev || e[0] === dev.index)) out.push(e);
    }
    return out;
  }

  /** The FDB entry of a unicast MAC (its only dst), if it is one of ours. */
  private async getFdb(dev: VxlanTarget, mac: string): Promise<FdbEntry | undefined> {
    try {
      const msgs = await this.k.exec(
        'get fdb',
        dev.name,
        (s, o) => neighAnswers(s, neighRequest({ family: AF_BRIDGE, ifindex: dev.index, flags: { self: true } }, { lladdr: bytes(macToBytes(mac)) }), o),
        mac,
      );
      const m = msgs[0];
      return m && parseFdb(m)?.[1];
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** The permanent neighbour entry of an IP, if there is one. */
  private async getNeigh(dev: VxlanTarget, entry: NeighEntry & { family: 4 | 6 }): Promise<NeighEntry | undefined> {
    try {
      const msgs = await this.k.exec(
        'get neighbour',
        dev.name,
        (s, o) => neighAnswers(s, neighRequest({ family: entry.family === 4 ? AF_INET : AF_INET6, ifindex: dev.index }, { dst: bytes(ipToBytes(entry.ip)) }), o),
        entry.ip,
      );
      const m = msgs[0];
      return m && parseNeigh(m)?.[1];
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') return undefined;
      throw e;
    }
  }
}

const noVxlan = (operation: string, name: string): TsoverlayError =>
  new TsoverlayError('KERNEL_FAILURE', `${operation} ${name}: no such vxlan device`);

const notVxlan = (operation: string, name: string, kind: string): TsoverlayError =>
  new TsoverlayError('KERNEL_FAILURE', `${operation} ${name}: not a vxlan device (kind ${kind || 'none'})`);

/** The request that adds one (checked) entry, and how a failure of it is named. */
interface EntryWrite {
  operation: string;
  detail: string;
  request: NeighRequest;
}

/**
 * Unicast MAC: one dst per MAC, REPLACE moves it. All-zero MAC: APPEND adds
 * this dst to its list (the kernel refuses REPLACE there: EOPNOTSUPP), and
 * appending a dst it already has is a no-op.
 */
const fdbWrite = (index: number, entry: FdbEntry): EntryWrite => ({
  operation: 'add fdb',
  detail: `${entry.mac} dst ${entry.dst}`,
  request: {
    flags: NLM_F_CREATE | (entry.mac === FLOOD_MAC ? NLM_F_APPEND : NLM_F_REPLACE),
    body: neighBody(AF_BRIDGE, index, NTF_SELF, bytes(ipToBytes(entry.dst)), bytes(macToBytes(entry.mac))),
  },
});

const neighWrite = (index: number, entry: NeighEntry & { family: 4 | 6 }): EntryWrite => ({
  operation: 'add neighbour',
  detail: `${entry.ip} lladdr ${entry.mac}`,
  request: {
    flags: NLM_F_CREATE | NLM_F_REPLACE,
    body: neighBody(entry.family === 4 ? AF_INET : AF_INET6, index, 0, bytes(ipToBytes(entry.ip)), bytes(macToBytes(entry.mac))),
  },
});

/** Bytes of an address the entry checks have already accepted. */
const bytes = (b: Buffer | undefined): Buffer => b ?? Buffer.alloc(0);

/** Delete requests (through the package; one at a time, each read first). */
const fdbDelete = (index: number, e: FdbEntry): [rt.Neighbor, rt.NeighborAttrs] => [
  { family: AF_BRIDGE, ifindex: index, flags: { self: true } }, // NTF_SELF: the VXLAN device's own table
  { lladdr: bytes(macToBytes(e.mac)), dst: bytes(ipToBytes(e.dst)) },
];

const neighDelete = (index: number, e: NeighEntry & { family: 4 | 6 }): [rt.Neighbor, rt.NeighborAttrs] => [
  { family: e.family === 4 ? AF_INET : AF_INET6, ifindex: index },
  { dst: bytes(ipToBytes(e.ip)) },
];
