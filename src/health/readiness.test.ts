import t from 'tap';
import { Readiness, readinessError } from './readiness.js';

/** A Log that keeps [level, msg, fields]. */
const recorder = () => {
  const lines: Array<[string, string, Record<string, unknown>]> = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push([level, msg, obj as Record<string, unknown>]);
  return { log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
};

t.test('readiness: named reasons, one line each change after the first ready', async (t) => {
  const { log, lines } = recorder();
  let clock = 1000;
  const r = new Readiness({ log, now: () => clock });
  let store: string | undefined = 'still connecting';
  let zk: string | undefined;
  r.set('store', () => store);
  r.set('zookeeper', () => zk);
  t.same(r.report(), { ready: false, reasons: ['store: still connecting'] });
  t.same(lines, [], 'the start-up is not told here (serve.ts tells it)');
  store = undefined;
  t.same(r.report(), { ready: true, reasons: [] });
  t.same(lines, [], 'first ready: serve.ts says "tsoverlay ready"');
  zk = 'ZooKeeper connection lost since X';
  clock = 5000;
  const down = r.report();
  t.same(down, { ready: false, reasons: ['zookeeper: ZooKeeper connection lost since X'] });
  t.equal(readinessError(down), 'zookeeper: ZooKeeper connection lost since X');
  r.report();
  r.report();
  t.equal(lines.length, 1, 'told once however often it is asked');
  t.match(lines[0], ['warn', 'not ready: zookeeper: ZooKeeper connection lost since X', { reasons: ['zookeeper: ZooKeeper connection lost since X'] }]);
  store = 'cluster store refused: wiped';
  t.equal(readinessError(r.report()), 'store: cluster store refused: wiped; zookeeper: ZooKeeper connection lost since X', 'reasons in the order the checks were added, one line');
  t.equal(lines.length, 2, 'a change of reasons is told');
  store = undefined;
  zk = undefined;
  clock = 8500;
  t.equal(r.report().ready, true);
  t.match(lines[2], ['info', 'ready again', { notReadyMs: 3500 }]);
  t.equal(readinessError(r.report()), undefined);
  t.equal(lines.length, 3);
});

t.test('readiness: a check that throws makes the node not ready, with the error', async (t) => {
  const r = new Readiness();
  r.set('odd', () => {
    throw new Error('boom');
  });
  t.same(r.report(), { ready: false, reasons: ['odd: check failed: boom'] });
  r.set('odd', () => undefined);
  t.equal(r.report().ready, true, 'set() replaces a check by name');
});

t.test('readiness: watch() tells a change nobody asked about', async (t) => {
  const { log, lines } = recorder();
  const r = new Readiness({ log });
  let reason: string | undefined;
  r.set('x', () => reason);
  r.report(); // ready once
  r.watch(10);
  t.teardown(() => r.stop());
  reason = 'down';
  const t0 = Date.now();
  while (lines.length === 0 && Date.now() - t0 < 2000) await new Promise((res) => setTimeout(res, 5));
  t.match(lines[0], ['warn', 'not ready: x: down']);
});
