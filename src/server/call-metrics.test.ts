import { pino } from 'pino';
import t from 'tap';
import { type Metrics, noMetrics } from '../metrics/metrics.js';
import { buildEdge } from './build-server.js';

t.test('every Docker call is counted by method with its status; /ready is not a call', async (t) => {
  const calls: Array<[string, number]> = [];
  const metrics: Metrics = { ...noMetrics, dockerCall: (method, seconds, status) => {
    t.ok(seconds >= 0 && seconds < 5, `${method}: a duration in seconds (${seconds})`);
    calls.push([method, status]);
  } };
  const { server } = buildEdge(pino({ level: 'silent' }), metrics);
  t.teardown(() => server.close());
  await server.inject({ method: 'POST', url: '/NetworkDriver.GetCapabilities' });
  // no core yet: refused with "cluster store unavailable"
  await server.inject({ method: 'POST', url: '/NetworkDriver.Join', payload: '{}' });
  await server.inject({ method: 'POST', url: '/NetworkDriver.Nonsense-1' });
  await server.inject({ method: 'GET', url: '/NetworkDriver.GetCapabilities' });
  await server.inject({ method: 'GET', url: '/ready' });
  t.equal(calls.length, 4, 'four calls, /ready left out');
  t.same(calls[0], ['NetworkDriver.GetCapabilities', 200]);
  t.equal(calls[1]?.[0], 'NetworkDriver.Join');
  t.ok((calls[1]?.[1] ?? 0) >= 400, `a refused Join has an error status (${calls[1]?.[1]})`);
  t.same(calls[2], ['other', 404], 'an unknown path is "other"');
  t.same(calls[3], ['other', 404], 'a method under GET is "other"');
});
