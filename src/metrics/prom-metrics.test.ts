import t from 'tap';
import { PromMetrics } from './prom-metrics.js';

/** The value of one sample line of the exposition text (`name{labels} value`), or undefined. */
const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

t.test('every family is in the exposition text with what was reported', async (t) => {
  const m = new PromMetrics('9.8.7');
  m.reconcilePass(0.004, 'ok', 0);
  m.reconcilePass(0.2, 'failed', 3);
  m.reconcilePass(0, 'skipped', 0);
  m.setProgrammed(() => ({ fdb: 12, neigh: 10, links: 4 }));
  m.zkState('disconnected');
  m.zkState('connected');
  m.zkReconnect('resumed');
  m.zkRequest('get', 0.002, true);
  m.zkRequest('commit', 0.01, false);
  m.dockerCall('NetworkDriver.Join', 0.003, 200);
  m.dockerCall('NetworkDriver.Join', 0.004, 500);
  m.dnsQuery('udp');
  m.dnsQuery('tcp');
  for (const o of ['answered', 'forwarded', 'dropped', 'servfail'] as const) m.dnsOutcome(o);
  m.engineError('networks', '500');
  const { contentType, text } = await m.scrape();
  t.match(contentType, /^text\/plain; version=0\.0\.4/);

  const expect: Record<string, number> = {
    'tsoverlay_build_info{version="9.8.7"}': 1,
    'tsoverlay_reconcile_passes_total{result="ok"}': 1,
    'tsoverlay_reconcile_passes_total{result="failed"}': 1,
    'tsoverlay_reconcile_passes_total{result="skipped"}': 1,
    'tsoverlay_reconcile_pass_duration_seconds_count': 2,
    'tsoverlay_reconcile_pass_duration_seconds_bucket{le="0.005"}': 1,
    'tsoverlay_reconcile_action_failures_total': 3,
    'tsoverlay_programmed_fdb_entries': 12,
    'tsoverlay_programmed_neighbour_entries': 10,
    'tsoverlay_programmed_links': 4,
    'tsoverlay_zk_session_state{state="connected"}': 1,
    'tsoverlay_zk_session_state{state="disconnected"}': 0,
    'tsoverlay_zk_session_state{state="expired"}': 0,
    'tsoverlay_zk_reconnects_total{kind="resumed"}': 1,
    'tsoverlay_zk_request_duration_seconds_count{op="get"}': 1,
    'tsoverlay_zk_request_errors_total{op="commit"}': 1,
    'tsoverlay_docker_calls_total{method="NetworkDriver.Join"}': 2,
    'tsoverlay_docker_call_errors_total{method="NetworkDriver.Join"}': 1,
    'tsoverlay_docker_call_duration_seconds_count{method="NetworkDriver.Join"}': 2,
    'tsoverlay_dns_queries_total{transport="udp"}': 1,
    'tsoverlay_dns_queries_total{transport="tcp"}': 1,
    'tsoverlay_dns_answers_total': 1,
    'tsoverlay_dns_forwards_total': 1,
    'tsoverlay_dns_drops_total': 1,
    'tsoverlay_dns_error_replies_total{rcode="SERVFAIL"}': 1,
    'tsoverlay_engine_errors_total{resource="networks",status="500"}': 1,
  };
  for (const [series, value] of Object.entries(expect)) t.equal(sample(text, series), value, series);
  t.match(text, /^# TYPE process_cpu_user_seconds_total counter$/m, 'default process metrics');
  t.match(text, /^# TYPE nodejs_heap_size_used_bytes gauge$/m, 'default Node.js metrics');
  t.notOk(sample(text, 'tsoverlay_zk_request_errors_total{op="get"}'), 'a successful request is no error');
});

t.test('two instances do not share families (each has its own registry)', async (t) => {
  const a = new PromMetrics('1');
  const b = new PromMetrics('2');
  a.dockerCall('NetworkDriver.Join', 0.001, 200);
  t.equal(sample((await a.scrape()).text, 'tsoverlay_docker_calls_total{method="NetworkDriver.Join"}'), 1);
  t.equal(sample((await b.scrape()).text, 'tsoverlay_docker_calls_total{method="NetworkDriver.Join"}'), undefined);
  t.equal(sample((await b.scrape()).text, 'tsoverlay_build_info{version="2"}'), 1);
});
