/**
 * The Docker plugin HTTP edge. Builds (never listens) a Fastify app that
 * serves every route of docker-routes.ts. serve.ts listens on the Unix socket.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { Readiness, type ReadinessReport, readinessError } from '../health/readiness.js';
import { type Metrics, noMetrics } from '../metrics/metrics.js';
import { countCalls } from './call-metrics.js';
import { type Core, CoreSlot } from './core.js';
import { ROUTES } from './docker-routes.js';
import { toErrorReply } from './error-reply.js';

export const PLUGIN_CONTENT_TYPE = 'application/vnd.docker.plugins.v1.1+json';

/** dockerd sends JSON with no Content-Type (and sometimes no body at all). */
const acceptUntypedJson = (app: FastifyInstance): void => {
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, null);
    try {
      done(null, JSON.parse(text));
    } catch {
      const err = Object.assign(new Error('body is not valid JSON'), { statusCode: 400 });
      done(err, undefined);
    }
  });
};

/** Every failure and unknown path goes back the way dockerd reads it: status + {"Err": …}. */
const replyErrors = (app: FastifyInstance): void => {
  app.setErrorHandler((err, request, reply) => {
    const method = request.url.replace(/^\//, '');
    const r = toErrorReply(err, method);
    if (r.unexpected) request.log.error({ err, method }, 'unexpected error');
    else request.log.warn({ method, status: r.status, reason: r.body.Err }, 'request refused');
    void reply.status(r.status).type(PLUGIN_CONTENT_TYPE).send(r.body);
  });

  app.setNotFoundHandler((request, reply) => {
    void reply
      .status(404)
      .type(PLUGIN_CONTENT_TYPE)
      .send({ Err: `tsoverlay does not implement ${request.method} ${request.url}` });
  });
};

/**
 * @param ready the node's readiness (src/health/readiness.ts): `GET /ready`
 *   answers 200 `{"Ready":true}`, or 503 `{"Ready":false,"Err":"<reasons in
 *   one line>","Reasons":[…]}` (for supervisors and tests — dockerd only
 *   POSTs). `GET /live` answers 200 whenever the process serves.
 */
export const buildServer = (
  core: Core,
  log: FastifyBaseLogger,
  ready: () => ReadinessReport = () => ({ ready: true, reasons: [] }),
  metrics: Metrics = noMetrics,
): FastifyInstance => {
  const app = Fastify({
    loggerInstance: log,
    // We log one debug line per call ourselves (onResponse below).
    logController: new LogController({ disableRequestLogging: true }),
  });
  acceptUntypedJson(app);
  replyErrors(app);

  app.addHook('onResponse', async (request, reply) => {
    request.log.debug({ method: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'plugin call');
  });
  countCalls(app, metrics);

  app.get('/ready', async (_request, reply) => {
    const r = ready();
    void reply.status(r.ready ? 200 : 503).type(PLUGIN_CONTENT_TYPE);
    return r.ready ? { Ready: true } : { Ready: false, Err: readinessError(r), Reasons: r.reasons };
  });
  app.get('/live', async (_request, reply) => {
    void reply.type(PLUGIN_CONTENT_TYPE);
    return { Live: true };
  });

  // Bodies are decoded by each route against its schema (route.ts), not by Fastify.
  for (const route of ROUTES) {
    app.post(`/${route.method}`, async (request, reply) => {
      const res = await route.handle(core, request.body);
      void reply.type(PLUGIN_CONTENT_TYPE);
      return res;
    });
  }
  return app;
};

/** The edge of a plugin that opens its socket before its core exists. */
export interface Edge {
  server: FastifyInstance;
  /** Fill it once the core is started; until then calls are refused and /ready says 503. */
  core: CoreSlot;
  /** What GET /ready answers: the check `store` (the core slot's) and whatever the app adds. */
  readiness: Readiness;
}

export const buildEdge = (log: FastifyBaseLogger, metrics: Metrics = noMetrics, readiness: Readiness = new Readiness()): Edge => {
  const core = new CoreSlot();
  readiness.set('store', () => core.notReady());
  return { core, readiness, server: buildServer(core, log, () => readiness.report(), metrics) };
};
