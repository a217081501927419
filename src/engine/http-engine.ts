/**
 * DockerEngine over the engine's HTTP API (unix:///path or tcp://host:port),
 * with Node's http module: a few JSON calls and the /events stream. Every
 * answer is decoded by engine-answers.ts before it is used.
 */
import { request, type RequestOptions } from 'node:http';
import type { Log } from '../log.js';
import { type Metrics, noMetrics } from '../metrics/metrics.js';
import { answers } from './engine-answers.js';
import type { CreateNetworkSpec, DockerEngine, EngineContainer, EngineEvent, EngineNetwork } from './engine.js';
import { EngineError } from './engine.js';

/** The engine's API version, as it says in GET /version ("1.41", "1.51", …). */
const API_VERSION = /^1\.\d+$/;
const TIMEOUT_MS = 10_000;


export class HttpDockerEngine implements DockerEngine {
  private readonly base: Pick<RequestOptions, 'socketPath' | 'host' | 'port'>;
  private apiPrefix: Promise<string> | undefined;

  constructor(
    dockerHost: string,
    private readonly log?: Log,
    private readonly metrics: Metrics = noMetrics,
  ) {
    if (dockerHost.startsWith('unix://')) this.base = { socketPath: dockerHost.slice('unix://'.length) };
    else {
      const u = new URL(dockerHost.replace(/^tcp:/, 'http:'));
      this.base = { host: u.hostname, port: Number(u.port) };
    }
  }

  async listNetworks(drivers: readonly string[]): Promise<EngineNetwork[]> {
    const query = drivers.length > 0 ? `?filters=${encodeURIComponent(JSON.stringify({ driver: drivers }))}` : '';
    // Note: the list endpoint leaves Containers empty; inspect a network for its count.
    return answers.networks(await this.call('GET', `/networks${query}`), 'docker GET /networks');
  }

  async inspectNetwork(idOrName: string): Promise<EngineNetwork | undefined> {
    try {
      const path = `/networks/${encodeURIComponent(idOrName)}`;
      return answers.network(await this.call('GET', path), `docker GET ${path}`);
    } catch (e) {
      if (e instanceof EngineError && e.status === 404) return undefined;
      throw e;
    }
  }

  async listContainers(): Promise<EngineContainer[]> {
    return answers.containers(await this.call('GET', '/containers/json'), 'docker GET /containers/json');
  }

  async inspectContainer(id: string): Promise<EngineContainer | undefined> {
    try {
      const path = `/containers/${encodeURIComponent(id)}/json`;
      return answers.container(await this.call('GET', path), `docker GET ${path}`);
    } catch (e) {
      if (e instanceof EngineError && e.status === 404) return undefined;
      throw e;
    }
  }

  async createNetwork(spec: CreateNetworkSpec): Promise<string> {
    const body = {
      Name: spec.name,
      Driver: spec.driver,
      CheckDuplicate: true,
      Internal: spec.internal,
      EnableIPv6: spec.ipv6,
      // only sent to turn IPv4 off (Docker 28+); older engines never get the field
      ...(spec.ipv4 === false ? { EnableIPv4: false } : {}),
      Options: spec.options,
      Labels: spec.labels,
      IPAM: {
        Driver: spec.ipamDriver,
        Config: spec.subnets.map((s) => ({ Subnet: s.subnet, ...(s.gateway ? { Gateway: s.gateway } : {}), ...(s.ipRange ? { IPRange: s.ipRange } : {}) })),
      },
    };
    return answers.createdId(await this.call('POST', '/networks/create', body), 'docker POST /networks/create');
  }

  async removeNetwork(idOrName: string): Promise<boolean> {
    try {
      await this.call('DELETE', `/networks/${encodeURIComponent(idOrName)}`);
      return true;
    } catch (e) {
      if (e instanceof EngineError && e.status === 404) return false;
      throw e;
    }
  }

  watchEvents(handlers: { onEvent: (e: EngineEvent) => void; onConnected?: () => void }, signal: AbortSignal): void {
    let delay = 200;
    const connect = (): void => {
      if (signal.aborted) return;
      void this.api().then((api) => listen(api), (e: unknown) => retry(e instanceof EngineError ? e : new EngineError(String(e))));
    };
    const listen = (api: string): void => {
      if (signal.aborted) return;
      const filters = encodeURIComponent(JSON.stringify({ type: ['network', 'container'] }));
      const req = request({ ...this.base, method: 'GET', path: `${api}/events?filters=${filters}`, signal }, (res) => {
        if (res.statusCode !== 200) {
          this.failed('/events', String(res.statusCode));
          res.resume();
          retry(new EngineError(`events: HTTP ${res.statusCode}`, res.statusCode));
          return;
        }
        delay = 200;
        handlers.onConnected?.();
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line === '') continue;
            try {
              handlers.onEvent(answers.event(JSON.parse(line)));
            } catch (e) {
              this.log?.warn({ err: e }, 'unreadable engine event');
            }
          }
        });
        res.on('end', () => retry(new Error('event stream ended')));
        res.on('error', (e) => retry(e));
      });
      req.on('error', (e) => {
        if (!signal.aborted) this.failed('/events', 'none');
        retry(e);
      });
      req.end();
    };
    let pending: NodeJS.Timeout | undefined;
    const retry = (e: Error): void => {
      if (signal.aborted || pending) return;
      this.log?.debug({ err: e, retryMs: delay }, 'engine event stream lost; reconnecting');
      pending = setTimeout(() => {
        pending = undefined;
        connect();
      }, delay);
      pending.unref();
      delay = Math.min(delay * 2, 5000);
    };
    signal.addEventListener('abort', () => pending && clearTimeout(pending), { once: true });
    connect();
  }

  /**
   * The path prefix of the engine's own API version, asked once (GET
   * /version): never a pinned version, which a newer engine may refuse
   * (29.0–29.2 refuse anything below 1.44). Unversioned paths (the engine's
   * current version too) if the engine does not say.
   */
  private api(): Promise<string> {
    this.apiPrefix ??= this.send('GET', '/version', '/version').then(
      (v) => {
        const version = answers.apiVersion(v);
        if (version && API_VERSION.test(version)) return `/v${version}`;
        return '';
      },
      (e: unknown) => {
        this.apiPrefix = undefined; // not reachable yet: ask again next time
        throw e;
      },
    );
    return this.apiPrefix;
  }

  /**
   * A call that failed, for the metrics: `status` its HTTP status, or 'none'
   * (no answer). 404 is not counted: asking for something gone is answered.
   */
  private failed(path: string, status: string): void {
    if (status !== '404') this.metrics.engineError(path.split(/[/?]/)[1] ?? '', status);
  }

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    return this.send(method, `${await this.api()}${path}`, path, body);
  }

  /** One request to `fullPath`; errors name `path` (what the caller asked for). */
  private send(method: string, fullPath: string, path: string, body?: unknown): Promise<unknown> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          ...this.base,
          method,
          path: fullPath,
          timeout: TIMEOUT_MS,
          headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            let json: unknown;
            try {
              json = text === '' ? {} : JSON.parse(text);
            } catch {
              json = { message: text };
            }
            if (status >= 200 && status < 300) return resolve(json);
            this.failed(path, String(status));
            reject(new EngineError(`docker ${method} ${path}: ${answers.errorMessage(json) ?? `HTTP ${status}`}`, status));
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new EngineError(`docker ${method} ${path}: no answer in ${TIMEOUT_MS} ms`)));
      req.on('error', (e) => {
        this.failed(path, 'none');
        reject(e instanceof EngineError ? e : new EngineError(`docker ${method} ${path}: ${e.message}`));
      });
      if (payload) req.write(payload);
      req.end();
    });
  }
}
