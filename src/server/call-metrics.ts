/**
 * Every Docker plugin API call, counted and timed by method
 * (`NetworkDriver.Join`, …) for the metrics port. Paths that are no
 * method count as "other", so a client cannot grow the label set; GET
 * /ready and /live are a supervisor's questions, not Docker calls, and are not counted.
 */
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../metrics/metrics.js';
import { ROUTES } from './docker-routes.js';

export const countCalls = (app: FastifyInstance, metrics: Metrics): void => {
  const methods = new Set(ROUTES.map((r) => r.method));
  app.addHook('onResponse', async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    if (path === '/ready' || path === '/live') return;
    const name = path.slice(1);
    const method = request.method === 'POST' && methods.has(name) ? name : 'other';
    metrics.dockerCall(method, reply.elapsedTime / 1000, reply.statusCode);
  });
};
