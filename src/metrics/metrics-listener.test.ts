import { request } from 'node:http';
import t from 'tap';
import { silentLog } from '../log.js';
import { startMetricsListener } from './metrics-listener.js';

const get = (port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> =>
  new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });

t.test('serves /metrics, /live and /ready; 404 elsewhere', async (t) => {
  let reason: string | undefined = 'tsoverlay is still connecting to its cluster store';
  let scrapes = 0;
  const listener = await startMetricsListener(
    { host: '127.0.0.1', port: 0 },
    {
      scrape: async () => (scrapes++, { contentType: 'text/plain; version=0.0.4; charset=utf-8', text: 'tsoverlay_up 1\n' }),
      notReady: () => reason,
      log: silentLog,
    },
  );
  t.teardown(() => listener.stop());
  const { port } = listener.address;
  t.ok(port > 0, `bound to port ${port}`);

  const m = await get(port, '/metrics');
  t.equal(m.status, 200);
  t.equal(m.body, 'tsoverlay_up 1\n');
  t.match(m.type, 'version=0.0.4');
  t.equal(scrapes, 1);
  t.equal((await get(port, '/live')).status, 200);

  const notReady = await get(port, '/ready');
  t.equal(notReady.status, 503);
  t.match(notReady.body, 'not ready: tsoverlay is still connecting to its cluster store');
  reason = undefined;
  t.equal((await get(port, '/ready')).status, 200, 'ready once the readiness says so');

  for (const path of ['/', '/metricsx', '/metrics/more', '/NetworkDriver.Join']) t.equal((await get(port, path)).status, 404, `${path}: 404`);
  t.equal((await get(port, '/metrics', 'POST')).status, 405, 'POST /metrics: 405');
  t.equal((await get(port, '/metrics?x=1')).status, 200, 'a query string is ignored');
});

t.test('a failing scrape is a 500, and the listener keeps serving', async (t) => {
  const errors: unknown[] = [];
  const listener = await startMetricsListener(
    { host: '127.0.0.1', port: 0 },
    { scrape: async () => Promise.reject(new Error('boom')), notReady: () => undefined, log: { ...silentLog, error: (o) => errors.push(o) } },
  );
  t.teardown(() => listener.stop());
  t.equal((await get(listener.address.port, '/metrics')).status, 500);
  t.equal(errors.length, 1, 'logged');
  t.equal((await get(listener.address.port, '/live')).status, 200);
});

t.test('an address that cannot be bound is refused with a message naming it', async (t) => {
  const first = await startMetricsListener({ host: '127.0.0.1', port: 0 }, { scrape: async () => ({ contentType: 'text/plain', text: '' }), notReady: () => undefined, log: silentLog });
  t.teardown(() => first.stop());
  const port = first.address.port;
  await t.rejects(
    startMetricsListener({ host: '127.0.0.1', port }, { scrape: async () => ({ contentType: 'text/plain', text: '' }), notReady: () => undefined, log: silentLog }),
    { message: `metrics listener cannot listen on 127.0.0.1:${port}: EADDRINUSE` },
  );
});
