/**
 * `tsoverlay serve`: run the plugin until SIGTERM/SIGINT; resolves with the
 * exit code.
 *
 * The socket is served first: dockerd gives a managed plugin ~10 s to open it
 * and registers it with the capability calls, which need no state. The edge
 * (server + core slot) is built once, here, and handed to createApp, whose
 * app serves on it; until the store is connected and the kernel reconciled,
 * every other call answers "cluster store unavailable". Connecting is retried
 * until it works.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { type Adapters, openAdapters } from './adapters.js';
import type { Config } from './config.js';
import type { Dataplane, Underlay } from './dataplane/dataplane.js';
import { IptablesFirewall } from './dataplane/iptables-firewall.js';
import { isTsoverlayError } from './errors.js';
import { Readiness, readinessError } from './health/readiness.js';
import { type StopSignals, type StopStep, listenForStop, openSocket, removeSocket, stopInOrder } from './lifecycle.js';
import { type App, createApp } from './main.js';
import type { MetricsListener } from './metrics/metrics-listener.js';
import type { Metrics } from './metrics/metrics.js';
import { type Edge, buildEdge } from './server/build-server.js';
import { createMetrics } from './start-metrics.js';
import { type RunningResolver, startResolver } from './start-resolver.js';
import { KvUnavailable } from './store/kv-store.js';
import { packageVersion } from './version.js';

/** The socket opens after this even if the store is not connected yet. */
const OPEN_SOCKET_AFTER_MS = 5000;

/** What has been started so far; the stop releases whatever is there. */
interface Running {
  adapters: Adapters | undefined;
  app: App | undefined;
  resolver: RunningResolver | undefined;
}

interface Serving {
  config: Config;
  /** The node's logger: every line of every component names the node. */
  log: Logger;
  dataplane: Dataplane;
  underlay: Underlay;
  edge: Edge;
  signals: StopSignals;
  running: Running;
  metrics: Metrics;
}

/** One start: open the adapters, create and start the app, then let Docker's calls reach it. */
const startOnce = async ({ config, log, dataplane, underlay, edge, running, metrics }: Serving): Promise<void> => {
  // a refused store keeps its adapters between tries: the session (and with it
  // this node's membership in the right tree, under a mistyped chroot) lives on
  running.adapters ??= await openAdapters(config, log, dataplane, underlay, metrics);
  const { kv, engine, seed } = running.adapters;
  const firewall = new IptablesFirewall(log.child({ component: 'firewall' }));
  const started = await createApp({
    config, log, kv, dataplane, firewall, edge, metrics,
    underlay, ...(engine ? { engine } : {}), ...(seed ? { seed } : {}),
  });
  await started.start();
  running.resolver = config.dnsAddress ? await startResolver(config, config.dnsAddress, started, log, metrics) : undefined;
  running.app = started;
  edge.core.fill(started, () => started.refusal());
};

/** An unreachable store is waited for; anything else (configuration, identity) ends the start-up. */
const isTransient = (e: unknown): boolean =>
  !isTsoverlayError(e, 'STORE_CONFLICT') && (e instanceof KvUnavailable || isTsoverlayError(e, 'STORE_UNAVAILABLE'));

/** How often a refused store (cluster/identity.ts) is looked at again. */
const REFUSED_RETRY_MS = 10_000;

/**
 * Start, retrying with backoff while the store is unreachable, until started
 * or signalled. A store refused as not this cluster's is looked at again
 * every REFUSED_RETRY_MS (the guard logged why, once); meanwhile the socket
 * answers every call with the reason and /ready says 503, and nothing on this
 * node is changed.
 */
const connect = async (s: Serving): Promise<void> => {
  const { log, signals, running, edge } = s;
  for (let delay = 500; !signals.stopping(); delay = Math.min(delay * 2, 10_000)) {
    try {
      // A signal while connecting ends the start-up (cli.ts exits after serve returns).
      await Promise.race([startOnce(s), signals.signalled]);
      break;
    } catch (e) {
      const refused = isTsoverlayError(e, 'STORE_REFUSED');
      if (!refused && !isTransient(e)) throw e; // a configuration or identity problem: the caller stops with its message
      if (refused) {
        edge.core.refuseAtStart((e as Error).message);
        await Promise.race([sleep(REFUSED_RETRY_MS), signals.signalled]);
        continue;
      }
      await running.adapters?.releaseStore().catch(() => undefined);
      running.adapters = undefined;
      log.warn({ err: e, retryMs: delay }, 'cluster store unreachable; Docker calls get "cluster store unavailable" until it is back');
      await Promise.race([sleep(delay), signals.signalled]);
    }
  }
};

/**
 * Connect, and open the socket once ready — normally within a second or
 * two, so `docker plugin enable` returns a working plugin — but after at most
 * OPEN_SOCKET_AFTER_MS anyway, well inside the ~10 s dockerd gives a managed
 * plugin: with the store down, the plugin still registers and answers
 * "cluster store unavailable" until it is back.
 */
const connectAndOpen = async (s: Serving): Promise<void> => {
  const { config, log, dataplane, edge, signals, running } = s;
  const connected = connect(s);
  let failure: unknown;
  connected.catch((e: unknown) => (failure = e));
  await Promise.race([connected.catch(() => undefined), sleep(OPEN_SOCKET_AFTER_MS), signals.signalled]);
  if (failure !== undefined) {
    await dataplane.close().catch(() => undefined);
    throw failure; // a configuration or identity problem: stop with its message
  }
  await openSocket(edge.server, config.socket);
  const readyAtOpen = running.app !== undefined;
  log.info({ socket: config.socket }, readyAtOpen ? 'socket open' : 'socket open; still connecting to the store');
  try {
    await connected;
  } catch (e) {
    await edge.server.close().catch(() => undefined);
    await removeSocket(config.socket);
    await dataplane.close().catch(() => undefined);
    throw e;
  }
  if (running.app && !signals.stopping()) log.info({ socket: config.socket, readyAtOpen }, 'tsoverlay ready');
};

/**
 * What GET /ready on the metrics address answers: the same readiness as the
 * plugin socket's own GET /ready (src/health/readiness.ts), in one line.
 */
const readiness = (edge: Edge) => (): string | undefined => readinessError(edge.readiness.report());

/** Everything started, stopped in order; kernel state stays in place. */
const stopSteps = ({ config, dataplane, edge, running }: Serving, metricsListener: MetricsListener | undefined): StopStep[] => [
  ['closing the server', async () => (edge.readiness.stop(), edge.server.close())],
  ['closing the metrics listener', async () => metricsListener?.stop()],
  ['removing the socket', () => removeSocket(config.socket)],
  ['stopping the resolver', async () => running.resolver?.stop()],
  ['stopping the loops', async () => running.app?.stop()],
  ['saving the endpoint records', async () => running.app && running.adapters?.saveRecords?.(running.app.stableRecords())],
  // ZooKeeper: the session stays until it times out, so a restart resumes it
  // and peers keep this node's entries; a node that stays down is dropped then.
  ['releasing the store', async () => running.adapters?.releaseStore()],
  ['closing netlink', () => dataplane.close()],
];

/**
 * Open netlink and find the underlay, whose address names the node unless
 * --node-name does: from then on every log line carries `node`.
 */
const openDataplane = async (config: Config, root: Logger): Promise<{ dataplane: Dataplane; underlay: Underlay; log: Logger }> => {
  const { NetlinkDataplane } = await import('./dataplane/netlink-dataplane.js');
  const netlinkLog = root.child({ component: 'netlink' });
  const dataplane = new NetlinkDataplane({ log: netlinkLog });
  try {
    const underlay = await dataplane.resolveUnderlay(config.advertise);
    const node = config.nodeName ?? underlay.address;
    netlinkLog.setBindings({ node }); // made before the node was known; nothing has logged through it yet
    return { dataplane, underlay, log: root.child({ node }) };
  } catch (e) {
    await dataplane.close().catch(() => undefined);
    throw e;
  }
};

export const serve = async (config: Config, root: Logger): Promise<number> => {
  const signals = listenForStop();
  const { dataplane, underlay, log } = await openDataplane(config, root);
  log.info({ version: packageVersion(), socket: config.socket, store: config.store.kind, vxlanPort: config.vxlanPort }, 'tsoverlay starting');
  const { metrics, listen } = await createMetrics(config, log);
  const edge = buildEdge(log.child({ component: 'server' }), metrics, new Readiness({ log: log.child({ component: 'health' }) }));
  edge.readiness.watch(); // each change of readiness is logged when it happens
  // /live and /ready answer while the store is still being connected
  const metricsListener = await listen(readiness(edge));
  const serving: Serving = { config, log, dataplane, underlay, edge, signals, metrics, running: { adapters: undefined, app: undefined, resolver: undefined } };
  try {
    await connectAndOpen(serving);
  } catch (e) {
    await metricsListener?.stop();
    log.fatal({ err: e }, e instanceof Error ? e.message : 'startup failed');
    return 1;
  }

  const signal = await signals.signalled;
  log.info({ signal }, 'stopping (kernel state stays in place)');
  return stopInOrder(log, stopSteps(serving, metricsListener));
};
