import { Writable } from 'node:stream';
import t from 'tap';
import { repeatedKeys, topLevelKeys } from '../test/helpers/json-keys.js';
import { childWith, createLogger, oneKeyEach } from './log.js';

/** A logger writing into an array of raw lines. */
const recorded = () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      done();
    },
  });
  return { log: createLogger('debug', sink), lines };
};

const keysOf = topLevelKeys;
const repeated = repeatedKeys;

t.test('the key walker sees repeats (so the checks below can fail)', async (t) => {
  t.same(repeated('{"a":1,"b":{"a":2},"c":"x\\"a\\":","a":3}'), ['a']);
  t.same(keysOf('{"level":30,"msg":"m","arr":[{"k":1}]}'), ['level', 'msg', 'arr']);
});

t.test('a child bound again with the same key: one key, the latest value', async (t) => {
  const { log, lines } = recorded();
  const node = log.child({ node: 'n1' });
  node.child({ component: 'dns' }).child({ component: 'dns' }).info({ ip: '10.0.0.1' }, 'resolver listening');
  node.child({ component: 'server' }).child({ component: 'health' }).info({}, 'renamed');
  t.equal(lines.length, 2);
  for (const l of lines) t.same(repeated(l), [], `no repeated key: ${l}`);
  const [a, b] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.match(a, { node: 'n1', component: 'dns', ip: '10.0.0.1', msg: 'resolver listening' });
  t.match(b, { node: 'n1', component: 'health' });
});

t.test('a call repeating a bound field: one key, the call\'s value', async (t) => {
  const { log, lines } = recorded();
  const node = log.child({ node: 'n1', component: 'store' });
  node.info({ node: 'n1', vni: 4096 }, 'same value');
  node.warn({ component: 'other' }, 'another value');
  for (const l of lines) t.same(repeated(l), [], `no repeated key: ${l}`);
  t.match(JSON.parse(lines[0] ?? '{}'), { node: 'n1', vni: 4096, level: 30 });
  t.match(JSON.parse(lines[1] ?? '{}'), { node: 'n1', component: 'other', level: 40 });
});

t.test('the node is on the lines of every component made from the node logger', async (t) => {
  const { log, lines } = recorded();
  const netlink = log.child({ component: 'netlink' }); // made before the node is known (serve.ts)
  netlink.setBindings({ node: 'h1' });
  const node = log.child({ node: 'h1' });
  for (const component of ['zookeeper', 'engine', 'firewall', 'reconcile']) node.child({ component }).info({}, component);
  netlink.debug({}, 'netlink');
  t.equal(lines.length, 5);
  for (const l of lines) t.equal((JSON.parse(l) as { node?: string }).node, 'h1', l);
});

t.test('childWith binds only what is not bound yet', async (t) => {
  const { log, lines } = recorded();
  const node = log.child({ node: 'n1' });
  t.equal(childWith(node, { node: 'n1' }), node, 'nothing to add: the same logger');
  const c = childWith(node, { node: 'n1', component: 'x' });
  t.same(c.bindings(), { node: 'n1', component: 'x' });
  c.info({}, 'one');
  t.same(keysOf(lines[0] ?? ''), ['level', 'time', 'pid', 'node', 'component', 'msg']);
});

t.test('oneKeyEach leaves other lines alone', async (t) => {
  t.equal(oneKeyEach('not json\n'), 'not json\n');
  t.equal(oneKeyEach('[1,1]\n'), '[1,1]\n');
  t.equal(oneKeyEach('{"a":1,"b":2,"a":3}\n'), '{"a":3,"b":2}\n');
});
