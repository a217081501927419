/**
 * The metrics port on prom-client: the one file that imports it. Every
 * family lives in this process's own Registry (never prom-client's global
 * one), with Node's default process metrics beside them and
 * `tsoverlay_build_info{version}`. The README's "Metrics" section lists
 * the families; keep the two together.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DnsOutcome, Metrics, PassOutcome, Programmed, ZkState } from './metrics.js';

/** Buckets (seconds) for calls that are mostly sub-millisecond to a few seconds. */
const FAST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Buckets (seconds) for reconcile passes: a delta pass takes milliseconds, a full one at scale seconds. */
const PASS_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const ZK_STATES: readonly ZkState[] = ['connected', 'disconnected', 'expired'];
const DNS_ERROR_RCODES: Partial<Record<DnsOutcome, string>> = { formerr: 'FORMERR', servfail: 'SERVFAIL', notimp: 'NOTIMP' };

export class PromMetrics implements Metrics {
  readonly registry = new Registry();
  private readonly passes;
  private readonly passSeconds;
  private readonly actionFailures;
  /** Counts what the last good pass made true (set by every such pass, called at scrape time). */
  private countProgrammed: (() => Programmed) | undefined;
  private readonly zkSession;
  private readonly zkReconnects;
  private readonly zkSeconds;
  private readonly zkErrors;
  private readonly dockerCalls;
  private readonly dockerErrors;
  private readonly dockerSeconds;
  private readonly dns;
  private readonly engineErrors;

  constructor(version: string) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({ name: 'tsoverlay_build_info', help: 'Always 1; the running version in its label', labelNames: ['version'], registers }).set({ version }, 1);

    this.passes = new Counter({ name: 'tsoverlay_reconcile_passes_total', help: 'Reconcile passes by result (ok, failed, skipped while the store is refused)', labelNames: ['result'], registers });
    this.passSeconds = new Histogram({ name: 'tsoverlay_reconcile_pass_duration_seconds', help: 'Duration of reconcile passes', buckets: PASS_BUCKETS, registers });
    this.actionFailures = new Counter({ name: 'tsoverlay_reconcile_action_failures_total', help: 'Reconcile actions (device or forwarding entry) that failed; retried by later passes', registers });
    // counted at each scrape, from what the last pass without failures made true (setProgrammed)
    const counted = (): Programmed | undefined => this.countProgrammed?.();
    const programmed = (name: string, help: string, pick: (p: Programmed) => number): Gauge =>
      new Gauge({
        name, help, registers,
        collect(this: Gauge) {
          const p = counted();
          if (p) this.set(pick(p));
        },
      });
    programmed('tsoverlay_programmed_fdb_entries', 'Static FDB entries on the VXLAN devices after the last pass without failures', (p) => p.fdb);
    programmed('tsoverlay_programmed_neighbour_entries', 'Permanent neighbour entries on the VXLAN devices after the last pass without failures', (p) => p.neigh);
    programmed('tsoverlay_programmed_links', 'tsoverlay devices in the host namespace after the last pass without failures', (p) => p.links);

    this.zkSession = new Gauge({ name: 'tsoverlay_zk_session_state', help: 'ZooKeeper session state: 1 for the current one', labelNames: ['state'], registers });
    this.zkReconnects = new Counter({ name: 'tsoverlay_zk_reconnects_total', help: 'ZooKeeper session re-established: the same session (resumed) or a new one after an expiry (new)', labelNames: ['kind'], registers });
    this.zkSeconds = new Histogram({ name: 'tsoverlay_zk_request_duration_seconds', help: 'ZooKeeper request latency by operation', labelNames: ['op'], buckets: FAST_BUCKETS, registers });
    this.zkErrors = new Counter({ name: 'tsoverlay_zk_request_errors_total', help: 'ZooKeeper requests that failed, by operation', labelNames: ['op'], registers });

    this.dockerCalls = new Counter({ name: 'tsoverlay_docker_calls_total', help: 'Docker plugin API calls by method', labelNames: ['method'], registers });
    this.dockerErrors = new Counter({ name: 'tsoverlay_docker_call_errors_total', help: 'Docker plugin API calls answered with an error ({"Err"}), by method', labelNames: ['method'], registers });
    this.dockerSeconds = new Histogram({ name: 'tsoverlay_docker_call_duration_seconds', help: 'Docker plugin API call latency by method', labelNames: ['method'], buckets: FAST_BUCKETS, registers });

    this.dns = {
      queries: new Counter({ name: 'tsoverlay_dns_queries_total', help: 'Queries the node resolver received, by transport', labelNames: ['transport'], registers }),
      answers: new Counter({ name: 'tsoverlay_dns_answers_total', help: 'Queries the node resolver answered itself (container names, NODATA included)', registers }),
      forwards: new Counter({ name: 'tsoverlay_dns_forwards_total', help: 'Queries relayed from an upstream resolver', registers }),
      drops: new Counter({ name: 'tsoverlay_dns_drops_total', help: 'Packets dropped unanswered (shorter than a header, or a response)', registers }),
      errors: new Counter({ name: 'tsoverlay_dns_error_replies_total', help: 'Queries answered with an error code (FORMERR, SERVFAIL, NOTIMP)', labelNames: ['rcode'], registers }),
    };
    this.engineErrors = new Counter({
      name: 'tsoverlay_engine_errors_total',
      help: 'Docker Engine API calls that failed (no answer, or an error status other than 404), by resource and status',
      labelNames: ['resource', 'status'],
      registers,
    });
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }

  reconcilePass(seconds: number, outcome: PassOutcome, failedActions: number): void {
    this.passes.inc({ result: outcome });
    if (outcome !== 'skipped') this.passSeconds.observe(seconds);
    if (failedActions > 0) this.actionFailures.inc(failedActions);
  }

  setProgrammed(count: () => Programmed): void {
    this.countProgrammed = count;
  }

  zkState(state: ZkState): void {
    for (const s of ZK_STATES) this.zkSession.set({ state: s }, s === state ? 1 : 0);
  }

  zkReconnect(kind: 'resumed' | 'new'): void {
    this.zkReconnects.inc({ kind });
  }

  zkRequest(op: string, seconds: number, ok: boolean): void {
    this.zkSeconds.observe({ op }, seconds);
    if (!ok) this.zkErrors.inc({ op });
  }

  dockerCall(method: string, seconds: number, status: number): void {
    this.dockerCalls.inc({ method });
    this.dockerSeconds.observe({ method }, seconds);
    if (status >= 400) this.dockerErrors.inc({ method });
  }

  dnsQuery(transport: 'udp' | 'tcp'): void {
    this.dns.queries.inc({ transport });
  }

  dnsOutcome(outcome: DnsOutcome): void {
    if (outcome === 'answered') this.dns.answers.inc();
    else if (outcome === 'forwarded') this.dns.forwards.inc();
    else if (outcome === 'dropped') this.dns.drops.inc();
    else this.dns.errors.inc({ rcode: DNS_ERROR_RCODES[outcome] ?? outcome });
  }

  engineError(resource: string, status: string): void {
    this.engineErrors.inc({ resource, status });
  }
}
