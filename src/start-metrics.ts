/**
 * Metrics on `--metrics-address`: the Prometheus registry (prom-metrics.ts,
 * loaded only when asked for) and its HTTP listener. Off by default: then
 * every part of the plugin gets `noMetrics` and nothing listens. A listener
 * that cannot bind is not fatal: the plugin keeps serving networks, and
 * says why there are no metrics.
 */
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { type MetricsListener, startMetricsListener } from './metrics/metrics-listener.js';
import { type Metrics, noMetrics } from './metrics/metrics.js';
import { packageVersion } from './version.js';

export interface NodeMetrics {
  /** What every part of the plugin reports to. */
  metrics: Metrics;
  /** Serve them (and `notReady` on GET /ready) on the configured address; undefined when off or not bound. */
  listen(notReady: () => string | undefined): Promise<MetricsListener | undefined>;
}

export const createMetrics = async (config: Config, log: Logger): Promise<NodeMetrics> => {
  const address = config.metricsAddress;
  if (!address) return { metrics: noMetrics, listen: async () => undefined };
  const { PromMetrics } = await import('./metrics/prom-metrics.js');
  const metrics = new PromMetrics(packageVersion());
  const mlog = log.child({ component: 'metrics' });
  const listen = async (notReady: () => string | undefined): Promise<MetricsListener | undefined> => {
    try {
      const listener = await startMetricsListener(address, { scrape: () => metrics.scrape(), notReady, log: mlog });
      mlog.info({ ip: listener.address.host, port: listener.address.port }, 'metrics listening (GET /metrics, /live, /ready)');
      return listener;
    } catch (e) {
      mlog.warn({ err: e }, `${e instanceof Error ? e.message : String(e)}; the plugin runs without its metrics listener`);
      return undefined;
    }
  };
  return { metrics, listen };
};
