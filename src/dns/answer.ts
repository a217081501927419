/**
 * Pure answer logic of the tsoverlay resolver: given one decoded question,
 * the querier's source address and the NameView, either answer it from the
 * cluster's endpoint names or say "forward" (not ours).
 *
 * Semantics (mirroring Docker's embedded DNS where it matters):
 * - A querier sees the records of every cluster network it is attached to
 *   (`view.networksOf(sourceIp)`), and nothing else. A container never
 *   resolves a container that shares no network with it: such a name is
 *   simply "not ours" and is forwarded upstream, which then answers NXDOMAIN
 *   (or whatever the upstream knows) — the same as Docker.
 * - Names match case-insensitively, with or without a trailing dot: the
 *   container `name`, each alias, and `name.NETWORKNAME` / `alias.NETWORKNAME`
 *   (NETWORKNAME = the Docker network name from `view.networkName`).
 * - Several records with the same name (e.g. one alias on two containers):
 *   all their addresses, deduplicated; `rotate` rotates them (round-robin).
 * - A: ipv4, AAAA: ipv6, ANY: both. A known name queried for another type
 *   (MX, TXT, or A/AAAA with no address of that family) → NOERROR with no
 *   answers (NODATA), never forward.
 * - PTR for `in-addr.arpa` / `ip6.arpa` of a visible endpoint address →
 *   the bare container `name` (Docker answers `name.network`; we answer the
 *   bare name, which resolves back here from every network of the querier).
 *   Partial reverse names and addresses that are not visible → forward.
 * - Unknown querier (source address not a tsoverlay endpoint), class other
 *   than IN/ANY, or not exactly one question → forward.
 * - TTL is short (DEFAULT_TTL seconds): containers come and go.
 */
import type { Answer, Packet, Question } from 'dns-packet';
import { canonicalIp, parseIp, type Ip } from '../net/ip.js';
import type { NameRecord, NameView } from './name-view.js';

export const DEFAULT_TTL = 5;

export type ForwardReason = 'unknown-querier' | 'unknown-name' | 'not-one-question' | 'class';

export type Decision =
  /** `answers` empty = NODATA (NOERROR, name exists, no record of that type). */
  | { kind: 'answer'; answers: Answer[] }
  | { kind: 'forward'; reason: ForwardReason };

export interface AnswerOptions {
  /** TTL of answers, seconds (default DEFAULT_TTL). */
  ttl?: number;
  /** Rotate the answer list by this many places (round-robin). */
  rotate?: number;
}

/** Lower-case, without a trailing dot ("." → ""). */
export const normalizeName = (name: string): string => name.toLowerCase().replace(/\.$/, '');

const unique = <T>(xs: readonly T[]): T[] => [...new Set(xs)];

/** The records visible to `sourceIp`, or undefined when the querier is unknown. */
const visibleRecords = (view: NameView, sourceIp: string): Array<{ rec: NameRecord; netName: string | undefined }> | undefined => {
  const networks = unique(view.networksOf(sourceIp));
  if (networks.length === 0) return undefined;
  const out: Array<{ rec: NameRecord; netName: string | undefined }> = [];
  for (const network of networks) {
    const netName = view.networkName(network);
    for (const rec of view.records(network)) out.push({ rec, netName: netName === undefined ? undefined : normalizeName(netName) });
  }
  return out;
};

const matchesName = (rec: NameRecord, netName: string | undefined, qname: string): boolean => {
  for (const raw of [rec.name, ...rec.aliases]) {
    const label = normalizeName(raw);
    if (label === '') continue;
    if (label === qname) return true;
    if (netName !== undefined && netName !== '' && `${label}.${netName}` === qname) return true;
  }
  return false;
};

/** The address a reverse name stands for ("4.3.2.1.in-addr.arpa" → 1.2.3.4), if it is a full one. */
export const reverseNameToIp = (qname: string): Ip | undefined => {
  const name = normalizeName(qname);
  if (name.endsWith('.in-addr.arpa')) {
    const labels = name.slice(0, -'.in-addr.arpa'.length).split('.');
    if (labels.length !== 4 || !labels.every((l) => /^\d{1,3}$/.test(l) && Number(l) <= 255)) return undefined;
    return parseIp(labels.reverse().map(Number).join('.'));
  }
  if (name.endsWith('.ip6.arpa')) {
    const labels = name.slice(0, -'.ip6.arpa'.length).split('.');
    if (labels.length !== 32 || !labels.every((l) => /^[0-9a-f]$/.test(l))) return undefined;
    return { family: 6, value: BigInt(`0x${labels.reverse().join('')}`) };
  }
  return undefined;
};

const sameIp = (text: string | undefined, ip: Ip): boolean => {
  if (text === undefined) return false;
  const parsed = parseIp(text);
  return parsed !== undefined && parsed.family === ip.family && parsed.value === ip.value;
};

const rotated = <T>(xs: T[], by: number | undefined): T[] => {
  if (xs.length < 2 || by === undefined) return xs;
  const k = ((Math.trunc(by) % xs.length) + xs.length) % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
};

const addressAnswers = (q: Question, matched: NameRecord[], ttl: number): Answer[] => {
  const wantA = q.type === 'A' || (q.type as string) === 'ANY';
  const wantAAAA = q.type === 'AAAA' || (q.type as string) === 'ANY';
  const answers: Answer[] = [];
  if (wantA) {
    const v4 = unique(matched.flatMap((r) => (r.ipv4 === undefined ? [] : [canonicalIp(r.ipv4) ?? r.ipv4])));
    for (const data of v4) answers.push({ type: 'A', name: q.name, class: 'IN', ttl, data });
  }
  if (wantAAAA) {
    const v6 = unique(matched.flatMap((r) => (r.ipv6 === undefined ? [] : [canonicalIp(r.ipv6) ?? r.ipv6])));
    for (const data of v6) answers.push({ type: 'AAAA', name: q.name, class: 'IN', ttl, data });
  }
  return answers;
};

/** Decide how to answer `query` (exactly one question) asked from `sourceIp`. */
export const decide = (query: Packet, sourceIp: string, view: NameView, opts: AnswerOptions = {}): Decision => {
  const q = query.questions?.length === 1 ? query.questions[0] : undefined;
  if (q === undefined) return { kind: 'forward', reason: 'not-one-question' };
  const klass = q.class as string | undefined;
  if (klass !== undefined && klass !== 'IN' && klass !== 'ANY') return { kind: 'forward', reason: 'class' };
  const visible = visibleRecords(view, canonicalIp(sourceIp) ?? sourceIp);
  if (visible === undefined) return { kind: 'forward', reason: 'unknown-querier' };
  const ttl = opts.ttl ?? DEFAULT_TTL;
  const qname = normalizeName(q.name);

  const matched = visible.filter(({ rec, netName }) => matchesName(rec, netName, qname)).map(({ rec }) => rec);
  if (matched.length > 0) return { kind: 'answer', answers: rotated(addressAnswers(q, matched, ttl), opts.rotate) };

  const ip = reverseNameToIp(qname);
  if (ip === undefined) return { kind: 'forward', reason: 'unknown-name' };
  const owners = visible.filter(({ rec }) => sameIp(ip.family === 4 ? rec.ipv4 : rec.ipv6, ip)).map(({ rec }) => rec);
  if (owners.length === 0) return { kind: 'forward', reason: 'unknown-name' };
  if (q.type !== 'PTR' && (q.type as string) !== 'ANY') return { kind: 'answer', answers: [] };
  const names = unique(owners.map((r) => r.name).filter((n) => n !== ''));
  const answers: Answer[] = names.map((data) => ({ type: 'PTR', name: q.name, class: 'IN', ttl, data }));
  return { kind: 'answer', answers };
};
