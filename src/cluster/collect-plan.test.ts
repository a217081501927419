/** The pure rules of garbage collection: lasting absence only, never this node, a node back starts over. */
import t from 'tap';
import { goneNodes, orphanEndpoints } from './collect-plan.js';

t.test('gone nodes: collected only after the delay, never this node or a live one', async (t) => {
  const base = { live: new Set(['n1', 'n2']), self: 'n1', afterMs: 1000 };
  const first = goneNodes({ ...base, referenced: ['n1', 'n2', 'n3', 'n3'], since: new Map(), now: 5000 });
  t.same(first.collect, [], 'a node first seen gone is only timed');
  t.same([...first.missing], [['n3', 5000]]);
  const early = goneNodes({ ...base, referenced: ['n3'], since: first.missing, now: 5999 });
  t.same(early.collect, [], 'not before the delay');
  const due = goneNodes({ ...base, referenced: ['n1', 'n3'], since: early.missing, now: 6000 });
  t.same(due.collect, ['n3'], 'gone for the whole delay');
  t.same(goneNodes({ ...base, self: 'n3', referenced: ['n3'], since: early.missing, now: 99_999 }).collect, [], 'never this node');
});

t.test('gone nodes: a node that came back starts over', async (t) => {
  const since = new Map([['n3', 0]]);
  const back = goneNodes({ referenced: ['n3'], live: new Set(['n3']), self: 'n1', since, now: 500, afterMs: 1000 });
  t.same(back.collect, []);
  t.same([...back.missing], [], 'its timer is dropped');
  const goneAgain = goneNodes({ referenced: ['n3'], live: new Set(), self: 'n1', since: back.missing, now: 1200, afterMs: 1000 });
  t.same(goneAgain.collect, [], 'gone again: the delay counts from now, not from the first absence');
  t.same([...goneAgain.missing], [['n3', 1200]]);
});

t.test('orphan endpoints: two checks a grace apart, both answered by the engine', async (t) => {
  const eps = [
    { id: 'known', checked: true, known: true },
    { id: 'gone', checked: true, known: false },
    { id: 'unasked', checked: false, known: false },
  ];
  const first = orphanEndpoints({ endpoints: eps, since: new Map(), now: 100, graceMs: 1000 });
  t.same(first.collect, [], 'one check is not enough');
  t.same([...first.missing], [['gone', 100]]);
  t.same(orphanEndpoints({ endpoints: eps, since: first.missing, now: 1099, graceMs: 1000 }).collect, [], 'not within the grace');
  t.same(orphanEndpoints({ endpoints: eps, since: first.missing, now: 1100, graceMs: 1000 }).collect, ['gone']);
  const unanswered = orphanEndpoints({ endpoints: [{ id: 'gone', checked: false, known: false }], since: first.missing, now: 5000, graceMs: 1000 });
  t.same(unanswered.collect, [], 'an engine that did not answer proves nothing');
  t.same([...unanswered.missing], [], 'and the endpoint starts over');
  const joined = orphanEndpoints({ endpoints: [{ id: 'gone', checked: true, known: true }], since: first.missing, now: 5000, graceMs: 1000 });
  t.same(joined.collect, [], 'known again (its Join arrived): kept');
  t.same([...joined.missing], []);
});
