/**
 * The metrics listener (`--metrics-address host:port`, off by default): a
 * plain node:http server for Prometheus and supervisors.
 *
 *   GET /metrics  the exposition text (prom-metrics.ts)
 *   GET /live     200 while the process serves at all
 *   GET /ready    200, or 503 with the reason (the readiness the caller wires in)
 *
 * Anything else is 404 (405 for another method on these paths). It knows
 * nothing of prom-client or of what readiness means.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { isIPv6 } from 'node:net';
import type { Log } from '../log.js';

export interface ListenAddress {
  host: string;
  port: number;
}

export interface MetricsListenerDeps {
  scrape(): Promise<{ contentType: string; text: string }>;
  /** Why the plugin is not ready, or undefined when it is. */
  notReady(): string | undefined;
  log: Log;
}

export interface MetricsListener {
  /** Where it listens (the real port when 0 was asked for). */
  readonly address: ListenAddress;
  stop(): Promise<void>;
}

const TEXT = 'text/plain; charset=utf-8';

const send = (res: ServerResponse, status: number, contentType: string, body: string): void => {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  res.end(body);
};

const handle = async (deps: MetricsListenerDeps, req: IncomingMessage, res: ServerResponse): Promise<void> => {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/metrics' && path !== '/live' && path !== '/ready') return send(res, 404, TEXT, 'not found: try /metrics, /live or /ready\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return send(res, 405, TEXT, `${req.method ?? ''} not allowed: GET ${path}\n`);
  }
  if (path === '/live') return send(res, 200, TEXT, 'ok\n');
  if (path === '/ready') {
    const reason = deps.notReady();
    return reason === undefined ? send(res, 200, TEXT, 'ready\n') : send(res, 503, TEXT, `not ready: ${reason}\n`);
  }
  const { contentType, text } = await deps.scrape();
  return send(res, 200, contentType, text);
};

/** Listen on `address`; rejects with a message naming the address when it cannot be bound. */
export const startMetricsListener = async (address: ListenAddress, deps: MetricsListenerDeps): Promise<MetricsListener> => {
  const server: Server = createServer((req, res) => {
    handle(deps, req, res).catch((err: unknown) => {
      deps.log.error({ err, path: req.url }, 'metrics request failed');
      if (!res.headersSent) send(res, 500, TEXT, 'internal error\n');
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const where = `${isIPv6(address.host) ? `[${address.host}]` : address.host}:${address.port}`;
      reject(new Error(`metrics listener cannot listen on ${where}: ${err.code ?? err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen({ host: address.host, port: address.port, exclusive: true }, () => {
      server.off('error', onError);
      server.on('error', (err) => deps.log.error({ err }, 'metrics listener error'));
      resolve();
    });
  });
  const bound = server.address();
  const port = typeof bound === 'object' && bound ? bound.port : address.port;
  return {
    address: { host: address.host, port },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
};
