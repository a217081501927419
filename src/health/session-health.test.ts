import t from 'tap';
import { SessionHealth } from './session-health.js';

t.test('session health: a lost connection counts after the grace; an expiry until registered', async (t) => {
  let clock = Date.parse('2026-12-05T08:00:00.000Z');
  const s = new SessionHealth({ graceMs: 2000, now: () => clock });
  t.equal(s.reason(), undefined, 'connected');
  s.event('disconnected');
  clock += 2000;
  t.equal(s.reason(), undefined, 'within the grace');
  clock += 1;
  t.equal(s.reason(), 'ZooKeeper connection lost since 2026-12-05T08:00:00.000Z');
  s.event('disconnected');
  clock += 5000;
  t.equal(s.reason(), 'ZooKeeper connection lost since 2026-12-05T08:00:00.000Z', 'stable text: since the first loss');
  s.event('reconnected');
  t.equal(s.reason(), undefined, 'the same session back');
  s.event('disconnected');
  clock += 500;
  s.event('expired');
  t.match(s.reason(), /^ZooKeeper session expired at 2026-12-05T08:00:07.501Z; this node is not registered/);
  s.event('connected');
  t.match(s.reason(), /expired/, 'a new session is not enough');
  s.registered();
  t.equal(s.reason(), undefined, 'registered in the new session');
});
