/**
 * Supervisor (zk/supervisor.ts) on a fake client, in real time: an
 * unanswered heartbeat drops the connection after a third of the session
 * timeout, an answered one does not, and a silent handshake is dropped after
 * its deadline. The contract suite covers the same against real ZooKeeper.
 */
/// <reference path="../node-zookeeper-client.d.ts" />
import { setTimeout as sleep } from 'node:timers/promises';
import type zookeeper from 'node-zookeeper-client';
import t, { type Test } from 'tap';
import { silentLog } from '../../log.js';
import { Supervisor } from './supervisor.js';

/** What the supervisor reads of a client, and how often it was asked to drop its socket. */
const fakeClient = (opts: { sessionTimeoutMs: number; sessionId: number; connecting: boolean; answer: boolean }) => {
  const stats = { beats: 0, drops: 0, firstBeatAt: 0, firstDropAt: 0 };
  const socket = {
    connecting: false,
    destroyed: false,
    destroy: () => {
      stats.drops++;
      stats.firstDropAt ||= Date.now();
    },
  };
  const sessionId = Buffer.alloc(8);
  sessionId.writeUInt32BE(opts.sessionId, 4);
  const client = {
    connectionManager: { state: opts.connecting ? 1 : 3, socket, pendingBuffer: null },
    getSessionTimeout: () => opts.sessionTimeoutMs,
    getSessionId: () => sessionId,
    exists: (_path: string, _w: unknown, cb: () => void) => {
      stats.beats++;
      stats.firstBeatAt ||= Date.now();
      if (opts.answer) setImmediate(cb);
    },
  };
  return { client: client as unknown as zookeeper.Client, stats };
};

const supervise = (t: Test, client: zookeeper.Client, connected: boolean): Supervisor => {
  const s = new Supervisor({ client: () => client, isConnected: () => connected, isClosed: () => false, servers: 1, log: silentLog });
  t.teardown(() => s.stop());
  return s;
};

/** Poll until `done()` (timers run late on a busy machine, never early). */
const until = async (done: () => boolean, maxMs = 6000): Promise<boolean> => {
  const end = Date.now() + maxMs;
  while (!done() && Date.now() < end) await sleep(50);
  return done();
};

t.test('an unanswered heartbeat drops the connection; answered ones do not', async (t) => {
  const silent = fakeClient({ sessionTimeoutMs: 3000, sessionId: 1, connecting: false, answer: false });
  const answered = fakeClient({ sessionTimeoutMs: 3000, sessionId: 1, connecting: false, answer: true });
  const start = Date.now();
  supervise(t, silent.client, true).sessionUp();
  supervise(t, answered.client, true).sessionUp();
  await sleep(700);
  t.same([silent.stats.beats, answered.stats.beats], [0, 0], 'no heartbeat before a third of the timeout');
  t.ok(await until(() => silent.stats.beats > 0 && answered.stats.beats > 0), 'a heartbeat each');
  t.ok(silent.stats.firstBeatAt - start >= 1000, 'not before a third of the timeout');
  t.ok(await until(() => silent.stats.drops > 0), 'the silent one is dropped');
  t.ok(silent.stats.firstDropAt - silent.stats.firstBeatAt > 1000, 'after another third without an answer');
  t.equal(silent.stats.beats, 1, 'no heartbeat while one is outstanding');
  t.ok(await until(() => answered.stats.beats >= 2), 'answered heartbeats go on');
  t.equal(answered.stats.drops, 0, 'an answered one is never dropped');
});

t.test('a handshake left unanswered is dropped after its deadline (resuming: a third of the timeout, ≥ 1 s)', async (t) => {
  const resuming = fakeClient({ sessionTimeoutMs: 3000, sessionId: 7, connecting: true, answer: false });
  const start = Date.now();
  supervise(t, resuming.client, false);
  await sleep(900);
  t.equal(resuming.stats.drops, 0, 'within the deadline');
  t.ok(await until(() => resuming.stats.drops > 0), 'dropped');
  t.ok(resuming.stats.firstDropAt - start > 1000, 'after 1 s');
  t.equal(resuming.stats.beats, 0, 'no heartbeats while not connected');
});

t.test('stop() ends the ticks', async (t) => {
  const silent = fakeClient({ sessionTimeoutMs: 3000, sessionId: 7, connecting: true, answer: false });
  supervise(t, silent.client, false).stop();
  await sleep(1700);
  t.equal(silent.stats.drops, 0);
});

t.test('a TCP connect that is not answered (SYNs lost to a partition) is tried again after about a second', async (t) => {
  const stalled = fakeClient({ sessionTimeoutMs: 10_000, sessionId: 7, connecting: true, answer: false });
  const cm = (stalled.client as unknown as { connectionManager: { socket: { connecting: boolean }; connectTimeoutHandler: unknown } }).connectionManager;
  cm.socket.connecting = true;
  const libraryTimer = setTimeout(() => t.fail('the library connect timer was left running'), 5000);
  cm.connectTimeoutHandler = libraryTimer;
  const start = Date.now();
  supervise(t, stalled.client, false);
  await sleep(800);
  t.equal(stalled.stats.drops, 0, 'not within the first second');
  t.ok(await until(() => stalled.stats.drops > 0, 3000), 'dropped');
  const ms = stalled.stats.firstDropAt - start;
  t.ok(ms >= 1000 && ms < 2000, `after ${ms} ms (not the library's 10 s connect timeout)`);
  t.equal(cm.connectTimeoutHandler, null, 'the library connect timer is cleared (it would destroy the next socket)');
  clearTimeout(libraryTimer);
});
