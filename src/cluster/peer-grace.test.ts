import t from 'tap';
import type { NodeRecord } from '../model.js';
import { PeerGrace } from './peer-grace.js';

const node = (name: string, address: string): NodeRecord => ({ node: name, address, vxlanPort: 4789, hostname: name, version: '1', startedAt: 'x' });
const A = node('A', '10.0.0.1');
const B = node('B', '10.0.0.2');
const names = (ns: NodeRecord[]) => ns.map((n) => n.node).sort();

t.test('a lost peer is kept for the grace period from when it was first seen gone, then dropped', async (t) => {
  let now = 1000;
  const g = new PeerGrace({ graceMs: 5000, now: () => now });
  t.same(names(g.members([A, B])), ['A', 'B']);
  t.equal(g.nextChangeInMs(), undefined, 'nobody lost: no change due');
  now = 2000;
  t.same(names(g.members([A])), ['A', 'B'], 'B gone from the store: kept');
  t.equal(g.nextChangeInMs(), 5000);
  now = 6999;
  t.same(names(g.members([A])), ['A', 'B'], 'still within its grace');
  t.equal(g.nextChangeInMs(), 1);
  now = 7000;
  t.same(names(g.members([A])), ['A'], 'grace over: dropped');
  t.equal(g.nextChangeInMs(), undefined);
  now = 8000;
  t.same(names(g.members([A])), ['A'], 'and not kept again');
});

t.test('a peer back within its grace is live again, with its current record; a later loss starts a new grace', async (t) => {
  let now = 0;
  const g = new PeerGrace({ graceMs: 5000, now: () => now });
  g.members([A, B]);
  now = 1000;
  g.members([A]);
  now = 4000;
  const moved = node('B', '10.0.0.9');
  t.same(g.members([A, moved]).find((n) => n.node === 'B')?.address, '10.0.0.9', 'back, at its new address');
  t.equal(g.nextChangeInMs(), undefined);
  now = 5500;
  t.same(g.members([A]).find((n) => n.node === 'B')?.address, '10.0.0.9', 'lost again: kept with its last record');
  now = 10_400;
  t.same(names(g.members([A])), ['A', 'B'], 'the new grace counts from the second loss');
  now = 10_500;
  t.same(names(g.members([A])), ['A']);
});

t.test('grace 0: a lost peer goes at once; a node never seen alive is not kept', async (t) => {
  const g = new PeerGrace({ graceMs: 0 });
  g.members([A, B]);
  t.same(names(g.members([A])), ['A']);
  const fresh = new PeerGrace({ graceMs: 60_000 });
  t.same(names(fresh.members([A])), ['A']);
});
