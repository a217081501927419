/**
 * Reading links over rtnetlink: one link by name or index, a dump of all
 * (or of one kind), answered without statistics and read by hand
 * (link-message.ts). Also the encoders of IFLA_LINKINFO the link writers use.
 */
import { AttrStream, ifla, type RtNetlinkSocket, rt, type StreamData } from 'netlink';
import { errnoOf } from './kernel-error.js';
import type { Exec, TimedOptions } from './lane.js';
import { type KernelLink, parseLinkMessage } from './link-message.js';
import { NLM_F_DUMP, RTM_GETLINK, RTM_NEWLINK } from './linux.js';
import { rawAnswers } from './raw-answers.js';

const encode = (data: StreamData): Buffer => {
  const out = new AttrStream();
  out.emit(data);
  return Buffer.concat(out.bufs);
};

/** IFLA_LINKINFO payload: IFLA_INFO_KIND [+ IFLA_INFO_DATA]. */
export const linkinfo = (kind: string, data?: StreamData): Buffer =>
  encode(ifla.formatInfo(data === undefined ? { kind } : { kind, data: encode(data) }));

/** A u32 attribute the package types as raw bytes (IFLA_LINK). */
export const u32 = (v: number): Buffer => Buffer.from(Uint32Array.of(v).buffer);

/** IFLA_EXT_MASK = RTEXT_FILTER_SKIP_STATS (linux/rtnetlink.h): the counters are most of a link message and we never read them. */
const SKIP_STATS = Buffer.from(Uint32Array.of(1 << 3).buffer);

/** An RTM_GETLINK written by the package; its answers' payloads unparsed, for parseLinkMessage. */
const linkRequest = (s: RtNetlinkSocket, data: rt.Link, attrs: ifla.LinkAttrs, o: TimedOptions & { flags?: number }): Promise<Buffer[]> => {
  const msg = new AttrStream();
  rt.formatLinkMessage({ kind: 'link', data, attrs }, msg);
  return rawAnswers(s, RTM_GETLINK, msg.bufs, RTM_NEWLINK, o);
};

export class LinkQueries {
  constructor(private readonly exec: Exec) {}

  findLink(name: string): Promise<KernelLink | undefined> {
    return this.getLink('get link', name, {}, { ifname: name });
  }

  findLinkByIndex(index: number): Promise<KernelLink | undefined> {
    return this.getLink('get link', `#${index}`, { index }, {});
  }

  /**
   * Every link, or the links of one kind (the kernel filters by IFLA_LINKINFO's
   * kind), or those whose name passes `keep` (the others are not parsed).
   */
  async dumpLinks(kind?: string, keep?: (name: string) => boolean): Promise<KernelLink[]> {
    const attrs = kind === undefined ? { extMask: SKIP_STATS } : { extMask: SKIP_STATS, linkinfo: linkinfo(kind) };
    const msgs = await this.exec('dump', kind === undefined ? 'links' : `${kind} links`, (s, o) => linkRequest(s, {}, attrs, { ...o, flags: NLM_F_DUMP }));
    const links: KernelLink[] = [];
    for (const m of msgs) {
      const link = parseLinkMessage(m, keep);
      if (link && (kind === undefined || link.kind === kind)) links.push(link); // in case a kernel ignores the filter
    }
    return links;
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
}
