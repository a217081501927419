/**
 * The node's resolver for container names across nodes. Failing to bind is
 * not fatal: the plugin keeps serving networks, and says why names of other
 * nodes will not resolve.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { App } from './main.js';
import { type Metrics, noMetrics } from './metrics/metrics.js';

export interface RunningResolver {
  stop(): Promise<void>;
}

export const startResolver = async (config: Config, address: string, app: App, log: Logger, metrics: Metrics = noMetrics): Promise<RunningResolver | undefined> => {
  const { Resolver } = await import('./dns/resolver.js');
  const { parseResolvConf } = await import('./dns/upstreams.js');
  const upstreams = config.dnsUpstreams ?? parseResolvConf(await readFile('/etc/resolv.conf', 'utf8').catch(() => ''), [address]);
  const resolver = new Resolver({ view: app.names, upstreams, log: log.child({ component: 'dns' }), clientRate: config.dnsClientRate, metrics });
  try {
    await app.dataplane.ensureLocalAddress(address);
    await resolver.start({ address, port: 53 }); // it logs 'resolver listening' with its upstreams
    return resolver;
  } catch (e) {
    log.warn({ err: e, ip: address }, `resolver cannot listen on ${address}:53 (${e instanceof Error ? e.message : String(e)}); container names from other nodes will not resolve`);
    return undefined;
  }
};
