/**
 * The per-node DNS resolver: listens on UDP and TCP, answers names of
 * tsoverlay endpoints visible to the querier (answer.ts) and forwards the
 * rest, byte for byte, to the upstream resolvers (tried in turn; SERVFAIL
 * when all fail). No input may crash the process: every handler is wrapped,
 * malformed queries get FORMERR when their header is readable and are
 * dropped otherwise.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { setMaxListeners } from 'node:events';
import { createServer, isIPv6, type Server, type Socket } from 'node:net';
import dnsPacket from 'dns-packet';
import type { DecodedPacket } from 'dns-packet';
import type { Log } from '../log.js';
import { type DnsOutcome, type Metrics, noMetrics } from '../metrics/metrics.js';
import { canonicalIp } from '../net/ip.js';
import { decide, type Decision } from './answer.js';
import { forwardTcp, forwardUdp } from './forward.js';
import type { NameView } from './name-view.js';
import { parseUpstream, type Upstream } from './upstreams.js';
import { buildAnswer, errorReply, peekHeader, RCODE, TCP_MAX, udpLimit } from './wire.js';
import { serveTcp } from './tcp-conn.js';
import { ClientLimits } from './client-limits.js';

/** Queries per second per source address, unless configured (--dns-client-rate). */
export const DEFAULT_CLIENT_RATE = 100;



export interface ResolverOptions {
  view: NameView;
  /** "ip" or "ip:port" ("[v6]:port" for IPv6 with a port); invalid entries are logged and skipped. */
  upstreams: string[];
  log: Log;
  /** Milliseconds clock, for latency in debug logs (default Date.now). */
  now?: () => number;
  /** TTL of our answers, seconds (default 5). */
  ttl?: number;
  /** Per-upstream timeout (default 2000 ms). */
  upstreamTimeoutMs?: number;
  /** Idle TCP connections are closed after this long (default 10000 ms). */
  tcpIdleTimeoutMs?: number;
  /** Concurrent TCP connections; more are refused (default 64). */
  maxTcpConnections?: number;
  /** Concurrent upstream forwards; more get SERVFAIL at once (default 256). */
  maxForwards?: number;
  /** Queries and what became of them (default: none). */
  metrics?: Metrics;
  /**
   * Queries per second one source address may send (default 100; bursts of
   * twice that); more are dropped (client-limits.ts). One source may also
   * hold at most a quarter of maxForwards waiting for upstreams.
   */
  clientRate?: number;
  /** Clock of the per-client limits (default Date.now). */
  limitsNow?: () => number;
}

export interface ResolverCounters {
  /** Answered by us (including NODATA). */
  answered: number;
  /** Relayed from an upstream. */
  forwarded: number;
  formerr: number;
  servfail: number;
  /** Opcodes other than QUERY. */
  notimp: number;
  /** Ignored: shorter than a header, or a response. */
  dropped: number;
  /** Dropped: the source was over its rate (clientRate). */
  limited: number;
}

export type Transport = 'udp' | 'tcp';

/** Source address as the NameView knows it: IPv4-mapped IPv6 unwrapped, IPv6 canonical. */
export const clientAddress = (addr: string): string => {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  const bare = mapped?.[1] ?? addr;
  return canonicalIp(bare) ?? bare;
};

export class Resolver {
  readonly counters: ResolverCounters = { answered: 0, forwarded: 0, formerr: 0, servfail: 0, notimp: 0, dropped: 0, limited: 0 };
  readonly #view: NameView;
  readonly #log: Log;
  readonly #now: () => number;
  readonly #upstreams: Upstream[];
  readonly #ttl: number | undefined;
  readonly #timeoutMs: number;
  readonly #idleMs: number;
  readonly #maxConns: number;
  readonly #maxForwards: number;
  readonly #metrics: Metrics;
  #udp: UdpSocket | undefined;
  #tcp: Server | undefined;
  readonly #conns = new Set<Socket>();
  #abort = newAbort();
  #forwards = 0;
  #rotation = 0;
  readonly #limits: ClientLimits;

  constructor(opts: ResolverOptions) {
    this.#view = opts.view;
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    this.#ttl = opts.ttl;
    this.#timeoutMs = opts.upstreamTimeoutMs ?? 2000;
    this.#idleMs = opts.tcpIdleTimeoutMs ?? 10_000;
    this.#maxConns = opts.maxTcpConnections ?? 64;
    this.#maxForwards = opts.maxForwards ?? 256;
    this.#limits = new ClientLimits({
      rate: opts.clientRate ?? DEFAULT_CLIENT_RATE,
      maxInflight: Math.max(1, Math.floor(this.#maxForwards / 4)),
      ...(opts.limitsNow ? { now: opts.limitsNow } : {}),
    });
    this.#metrics = opts.metrics ?? noMetrics;
    this.#upstreams = [];
    for (const text of opts.upstreams) {
      const up = parseUpstream(text);
      if (up) this.#upstreams.push(up);
      else this.#log.warn({ upstream: text }, 'ignoring invalid upstream resolver');
    }
  }

  /**
   * Listen on UDP and TCP at `address`:`port` (port 0: one free port for
   * both). Rejects with a clear message (and the system `code`, e.g.
   * EADDRNOTAVAIL, EACCES, EADDRINUSE) when either cannot be bound.
   */
  async start({ address, port }: { address: string; port: number }): Promise<{ address: string; port: number }> {
    if (this.#udp || this.#tcp) throw new Error('dns resolver already started');
    this.#abort = newAbort();
    for (let attempt = 0; ; attempt++) {
      const udp = await this.#bindUdp(address, port);
      const bound = udp.address().port;
      try {
        this.#tcp = await this.#listenTcp(address, bound);
        this.#udp = udp;
        this.#log.info({ ip: address, port: bound, upstreams: this.#upstreams.map((u) => `${u.host}:${u.port}`) }, 'resolver listening');
        return { address, port: bound };
      } catch (e) {
        udp.close();
        const code = (e as { code?: unknown }).code;
        if (port !== 0 || code !== 'EADDRINUSE' || attempt >= 10) throw e;
      }
    }
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    const udp = this.#udp;
    const tcp = this.#tcp;
    this.#udp = undefined;
    this.#tcp = undefined;
    for (const c of this.#conns) c.destroy();
    this.#conns.clear();
    if (udp) await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (tcp) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }

  /** The reply to one query packet, or undefined to drop it. Never throws. */
  async respond(packet: Buffer, source: string, transport: Transport): Promise<Buffer | undefined> {
    this.#metrics.dnsQuery(transport);
    try {
      return await this.#respond(packet, clientAddress(source), transport);
    } catch (err) {
      this.#log.error({ err, source }, 'dns query handling failed');
      this.#count('servfail');
      return errorReply(packet, RCODE.SERVFAIL);
    }
  }

  /** What became of a query: in `counters` and the metrics. */
  #count(outcome: DnsOutcome): void {
    this.counters[outcome]++;
    this.#metrics.dnsOutcome(outcome);
  }

  async #respond(packet: Buffer, source: string, transport: Transport): Promise<Buffer | undefined> {
    const admitted = this.#limits.admit(source);
    if (!admitted.ok) {
      this.counters.limited++;
      this.#metrics.dnsOutcome('dropped'); // the metrics' drops count these too
      if (admitted.report !== undefined) {
        this.#log.warn(
          { source, dropped: admitted.report, rate: this.#limits.rate, burst: this.#limits.burst },
          'dns client over its query rate; queries dropped',
        );
      }
      return undefined;
    }
    const header = peekHeader(packet);
    if (header === undefined || header.qr) {
      this.#count('dropped');
      return undefined;
    }
    if (header.opcode !== 0) {
      this.#count('notimp');
      return errorReply(packet, RCODE.NOTIMP);
    }
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(packet);
    } catch (err) {
      this.#log.debug({ source, err: String(err) }, 'malformed dns query');
      this.#count('formerr');
      return errorReply(packet, RCODE.FORMERR);
    }
    if (query.questions?.length !== 1) {
      this.#count('formerr');
      return errorReply(packet, RCODE.FORMERR);
    }
    let decision: Decision;
    try {
      decision = decide(query, source, this.#view, { ...(this.#ttl === undefined ? {} : { ttl: this.#ttl }), rotate: this.#rotation++ });
    } catch (err) {
      this.#log.warn({ source, err }, 'name view failed; forwarding');
      decision = { kind: 'forward', reason: 'unknown-name' };
    }
    if (this.#rotation > 1_000_000) this.#rotation = 0;
    if (decision.kind === 'answer') {
      this.#count('answered');
      return buildAnswer(query, decision.answers, transport === 'udp' ? udpLimit(query) : TCP_MAX);
    }
    return this.#forward(packet, source, transport, decision.reason);
  }

  async #forward(packet: Buffer, source: string, transport: Transport, reason: string): Promise<Buffer | undefined> {
    if (this.#forwards >= this.#maxForwards) {
      this.#log.warn({ source, inflight: this.#forwards }, 'too many forwarded queries in flight');
      this.#count('servfail');
      return errorReply(packet, RCODE.SERVFAIL);
    }
    if (!this.#limits.startForward(source)) {
      this.#log.debug({ source, max: this.#limits.maxInflight }, 'too many forwarded queries of one client in flight');
      this.#count('servfail');
      return errorReply(packet, RCODE.SERVFAIL);
    }
    this.#forwards++;
    try {
      for (const up of this.#upstreams) {
        const started = this.#now();
        try {
          const opts = { timeoutMs: this.#timeoutMs, signal: this.#abort.signal };
          const reply = transport === 'udp' ? await forwardUdp(packet, up, opts) : await forwardTcp(packet, up, opts);
          this.#count('forwarded');
          this.#log.debug({ source, reason, upstream: up.host, ms: this.#now() - started }, 'dns query forwarded');
          return reply;
        } catch (err) {
          this.#log.debug({ source, upstream: up.host, err: String(err) }, 'dns upstream failed');
          if (this.#abort.signal.aborted) break;
        }
      }
    } finally {
      this.#forwards--;
      this.#limits.endForward(source);
    }
    this.#count('servfail');
    return errorReply(packet, RCODE.SERVFAIL);
  }

  #bindUdp(address: string, port: number): Promise<UdpSocket> {
    return new Promise((resolve, reject) => {
      const sock = createSocket({ type: isIPv6(address) ? 'udp6' : 'udp4' });
      const onBindError = (err: NodeJS.ErrnoException): void => {
        sock.close();
        reject(bindError('udp', address, port, err));
      };
      sock.once('error', onBindError);
      sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => this.#onUdp(sock, msg, rinfo));
      sock.bind(port, address, () => {
        sock.off('error', onBindError);
        sock.on('error', (err) => this.#log.error({ err }, 'dns udp socket error'));
        resolve(sock);
      });
    });
  }

  #onUdp(sock: UdpSocket, msg: Buffer, rinfo: RemoteInfo): void {
    void this.respond(msg, rinfo.address, 'udp').then((reply) => {
      if (reply === undefined || this.#udp !== sock) return;
      try {
        sock.send(reply, rinfo.port, rinfo.address, (err) => {
          if (err) this.#log.debug({ err: String(err) }, 'dns udp send failed');
        });
      } catch (err) {
        this.#log.debug({ err: String(err) }, 'dns udp send failed');
      }
    }, (err: unknown) => this.#log.error({ err }, 'dns udp reply failed'));
  }

  #listenTcp(address: string, port: number): Promise<Server> {
    return new Promise((resolve, reject) => {
      const server = createServer({ allowHalfOpen: true }, (sock) => {
        try {
          this.#conns.add(sock);
          sock.on('close', () => this.#conns.delete(sock));
          serveTcp(sock, { idleMs: this.#idleMs, respond: (frame, src) => this.respond(frame, src, 'tcp'), log: this.#log });
        } catch (err) {
          this.#log.error({ err }, 'dns tcp connection setup failed');
          sock.destroy();
        }
      });
      server.maxConnections = this.#maxConns;
      const onListenError = (err: NodeJS.ErrnoException): void => reject(bindError('tcp', address, port, err));
      server.once('error', onListenError);
      server.listen({ host: address, port, exclusive: true }, () => {
        server.off('error', onListenError);
        server.on('error', (err) => this.#log.error({ err }, 'dns tcp server error'));
        resolve(server);
      });
    });
  }
}

/** One abort signal is shared by every forward in flight (up to maxForwards listeners). */
const newAbort = (): AbortController => {
  const c = new AbortController();
  setMaxListeners(0, c.signal);
  return c;
};

const bindError = (proto: string, address: string, port: number, err: NodeJS.ErrnoException): Error => {
  const where = `${isIPv6(address) ? `[${address}]` : address}:${port}`;
  const e = new Error(`dns resolver cannot listen on ${proto} ${where}: ${err.code ?? err.message}`, { cause: err }) as NodeJS.ErrnoException;
  if (err.code !== undefined) e.code = err.code;
  return e;
};
