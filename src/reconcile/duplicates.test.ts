import t from 'tap';
import { type EndpointRecord, asEndpointId, asNetworkId } from '../model.js';
import { conflictKey, resolveDuplicates } from './duplicates.js';

const ep = (id: string, node: string, ip: string, mac = `02:42:0a:14:00:${ip.split('.')[3]!.padStart(2, '0')}`): EndpointRecord => ({
  id: asEndpointId(id),
  networkId: asNetworkId('k'),
  node,
  ipv4: `${ip}/24`,
  mac,
  hostIf: `tsh${id}`,
  containerIf: `tsc${id}`,
});

t.test('no duplicates: every record is programmed, in its order', async (t) => {
  const eps = [ep('b', 'B', '10.20.0.3'), ep('a', 'A', '10.20.0.2')];
  const r = resolveDuplicates('k', eps, () => 0);
  t.same(r.programmed, eps);
  t.same(r.conflicts, []);
});

t.test('an orphaned record and a new one on the same IP: the newest record wins, whatever the order', async (t) => {
  const orphan = ep('ffff', 'B', '10.20.0.5');
  const fresh = ep('0000', 'C', '10.20.0.5');
  const created = new Map([[orphan.id, 10], [fresh.id, 20]]);
  for (const order of [[orphan, fresh], [fresh, orphan]]) {
    const r = resolveDuplicates('k', order, (e) => created.get(e.id)!);
    t.same(r.programmed, [fresh], 'only the newer record is programmed (its id is the smaller one)');
    t.equal(r.conflicts.length, 1);
    t.match(r.conflicts[0], { network: 'k', winner: { id: '0000' }, loser: { id: 'ffff' } });
    t.match(r.conflicts[0]!.shared, /^(mac|ip) /);
  }
});

t.test('same stamp: the larger endpoint id wins; the choice is stable across passes', async (t) => {
  const x = ep('aaaa', 'B', '10.20.0.7');
  const y = ep('bbbb', 'C', '10.20.0.7');
  const first = resolveDuplicates('k', [x, y], () => 5);
  const again = resolveDuplicates('k', [y, x], () => 5);
  t.same(first.programmed, [y]);
  t.same(again.programmed, [y]);
  t.equal(conflictKey(first.conflicts[0]!), conflictKey(again.conflicts[0]!), 'the same conflict, reported under the same key');
});

t.test('a shared MAC alone is a conflict; a loser holds nothing against others', async (t) => {
  const a = ep('a', 'A', '10.20.0.2', '02:42:00:00:00:01');
  const b = ep('b', 'B', '10.20.0.3', '02:42:00:00:00:01');
  // c shares b's IP only; b lost, so c is not in conflict with it
  const c = ep('c', 'C', '10.20.0.3', '02:42:00:00:00:03');
  const stamps = new Map([[a.id, 3], [b.id, 2], [c.id, 1]]);
  const r = resolveDuplicates('k', [a, b, c], (e) => stamps.get(e.id)!);
  t.same(r.programmed.map((e) => e.id), ['a', 'c']);
  t.same(r.conflicts.map((x) => [x.loser.id, x.winner.id, x.shared]), [['b', 'a', 'mac 02:42:00:00:00:01']]);
});
