/** ZooKeeper error mapping (zk/errors.ts): codes → port errors, and which op a failed multi is blamed on. */
/// <reference path="../node-zookeeper-client.d.ts" />
import zookeeper from 'node-zookeeper-client';
import t from 'tap';
import { KvConflict, type KvOp, KvUnavailable } from '../kv-store.js';
import { failedOp, isNoNode, toStoreError, zkCode } from './errors.js';

const { Exception: Code } = zookeeper;

/** An error shaped like the library's: a code and the code's name. */
const zkError = (name: string, code: number): Error => Object.assign(new Error(`Exception: ${name}[${code}]`), { name, code });

const create: KvOp = { type: 'create', path: '/a', data: '' };
const set: KvOp = { type: 'set', path: '/b', data: 'x', version: 3 };
const del: KvOp = { type: 'delete', path: '/c', version: -1 };

t.test('conflict codes become KvConflict against the blamed op', async (t) => {
  const cases: Array<[string, number, string]> = [
    ['NO_NODE', Code.NO_NODE, 'missing'],
    ['NODE_EXISTS', Code.NODE_EXISTS, 'exists'],
    ['BAD_VERSION', Code.BAD_VERSION, 'version'],
    ['NOT_EMPTY', Code.NOT_EMPTY, 'not-empty'],
  ];
  for (const [name, code, reason] of cases) {
    const e = toStoreError(zkError(name, code), 'commit', set);
    t.ok(e instanceof KvConflict, name);
    t.equal((e as KvConflict).reason, reason);
    t.equal((e as KvConflict).op, set);
  }
  // without an op to blame it is a plain error naming the call
  const plain = toStoreError(zkError('NO_NODE', Code.NO_NODE), 'get /x', undefined);
  t.notOk(plain instanceof KvConflict);
  t.equal(plain.message, 'ZooKeeper NO_NODE during get /x');
});

t.test('connection codes become KvUnavailable; others and non-ZooKeeper errors stay plain', async (t) => {
  for (const [name, code] of [
    ['CONNECTION_LOSS', Code.CONNECTION_LOSS],
    ['SESSION_EXPIRED', Code.SESSION_EXPIRED],
    ['OPERATION_TIMEOUT', Code.OPERATION_TIMEOUT],
  ] as const) {
    const e = toStoreError(zkError(name, code), 'children /n', create);
    t.ok(e instanceof KvUnavailable, name);
    t.equal(e.message, `ZooKeeper ${name} during children /n`);
  }
  const auth = toStoreError(zkError('AUTH_FAILED', Code.AUTH_FAILED), 'get /x', create);
  t.notOk(auth instanceof KvUnavailable || auth instanceof KvConflict);
  t.equal(auth.message, 'ZooKeeper AUTH_FAILED during get /x');
  const other = toStoreError(new TypeError('boom'), 'get /x', create);
  t.equal(other.message, 'get /x: boom');
  t.type(other.cause, TypeError);
});

t.test('zkCode and isNoNode read only numeric codes', async (t) => {
  t.equal(zkCode(zkError('NO_NODE', Code.NO_NODE)), Code.NO_NODE);
  t.equal(zkCode({ code: 'ENOENT' }), undefined);
  t.equal(zkCode(null), undefined);
  t.ok(isNoNode(zkError('NO_NODE', Code.NO_NODE)));
  t.notOk(isNoNode(zkError('NODE_EXISTS', Code.NODE_EXISTS)));
  t.notOk(isNoNode(null));
});

t.test('failedOp: the first op that reports a real error; a lone op without results', async (t) => {
  const ops = [create, set, del];
  t.equal(
    failedOp(ops, [
      { type: -1, err: Code.OK },
      { type: -1, err: Code.BAD_VERSION },
      { type: -1, err: Code.RUNTIME_INCONSISTENCY },
    ]),
    set,
  );
  t.equal(failedOp(ops, undefined), undefined);
  t.equal(failedOp([del], undefined), del);
  t.equal(failedOp([del], [{ type: -1, err: Code.RUNTIME_INCONSISTENCY }]), del);
});

t.test('NO_AUTH becomes ZkAccessDenied naming the path and the setting to check', async (t) => {
  const { ZkAccessDenied } = await import('./errors.js');
  const read = toStoreError(zkError('NO_AUTH', Code.NO_AUTH), 'get /networks/a', undefined);
  t.ok(read instanceof ZkAccessDenied);
  t.match(read.message, /^ZooKeeper refused access to \/networks\/a \(get \/networks\/a\): check --zk-auth-file/);
  const write = toStoreError(zkError('NO_AUTH', Code.NO_AUTH), 'commit (set /b)', set);
  t.ok(write instanceof ZkAccessDenied);
  t.match(write.message, /refused access to \/b /);
  t.notOk(write instanceof KvConflict);
});
