import t from 'tap';
import { FailureStreak } from './failure-streak.js';

t.test('failure streak: 3 failures in a row, skipped runs count neither way', async (t) => {
  const f = new FailureStreak({ what: 'reconcile passes' });
  f.record('failed');
  f.record('failed');
  f.record('skipped');
  t.equal(f.reason(), undefined, 'two failures');
  f.record('failed');
  t.equal(f.reason(), '3 or more reconcile passes in a row failed (see the log)');
  f.record('failed');
  t.equal(f.reason(), '3 or more reconcile passes in a row failed (see the log)', 'the text stays the same as the streak grows');
  f.record('ok');
  t.equal(f.reason(), undefined, 'one good pass ends it');
});
