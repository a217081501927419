import t from 'tap';
import { ClientLimits } from './client-limits.js';

const clock = () => {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
};

t.test('a token bucket per source: the burst, then the rate', async (t) => {
  const c = clock();
  const l = new ClientLimits({ rate: 10, maxInflight: 2, now: c.now });
  t.equal(l.burst, 20, 'burst defaults to twice the rate');
  const first = Array.from({ length: 25 }, () => l.admit('10.0.0.2').ok);
  t.equal(first.filter(Boolean).length, 20, 'a quiet source may send a burst');
  t.equal(l.dropped, 5);
  t.ok(l.admit('10.0.0.3').ok, 'another source is not touched');
  c.advance(500);
  t.equal(Array.from({ length: 10 }, () => l.admit('10.0.0.2').ok).filter(Boolean).length, 5, 'half a second refills rate / 2');
  c.advance(60_000);
  t.equal(Array.from({ length: 30 }, () => l.admit('10.0.0.2').ok).filter(Boolean).length, 20, 'never more than the burst');
});

t.test('drops are reported at most once per source per interval, with the count since the last report', async (t) => {
  const c = clock();
  const l = new ClientLimits({ rate: 1, burst: 1, maxInflight: 1, reportEveryMs: 10_000, now: c.now });
  t.same(l.admit('a'), { ok: true });
  t.same(l.admit('a'), { ok: false, report: 1 }, 'the first drop is reported');
  for (let i = 0; i < 50; i++) t.same(l.admit('a'), { ok: false }, 'then counted quietly');
  t.same(l.admit('b'), { ok: true });
  t.same(l.admit('b'), { ok: false, report: 1 }, 'each source on its own');
  c.advance(9_999);
  t.same(l.admit('a'), { ok: true }, 'refilled');
  t.same(l.admit('a'), { ok: false });
  c.advance(1);
  t.same(l.admit('a'), { ok: false, report: 52 }, 'the next report says how many since the last');
});

t.test('forwards of one source in flight are capped', async (t) => {
  const l = new ClientLimits({ rate: 100, maxInflight: 2 });
  t.ok(l.startForward('a'));
  t.ok(l.startForward('a'));
  t.notOk(l.startForward('a'), 'a third waits for nothing: refused');
  t.ok(l.startForward('b'), 'another source has its own share');
  l.endForward('a');
  t.ok(l.startForward('a'), 'a finished one frees a slot');
});

t.test('quiet sources are forgotten', async (t) => {
  const c = clock();
  const l = new ClientLimits({ rate: 10, maxInflight: 1, reportEveryMs: 1000, now: c.now });
  for (let i = 0; i < 100; i++) l.admit(`10.0.${i >> 8}.${i & 255}`);
  l.startForward('busy');
  t.equal(l.tracked, 101);
  c.advance(5_000);
  l.admit('10.9.9.9');
  t.equal(l.tracked, 2, 'only the one with a forward in flight and the new one remain');
});
