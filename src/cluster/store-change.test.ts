/** What a store change concerns: scoped by the watched path, merged while it waits for a pass. */
import t from 'tap';
import { PendingChanges, type StoreChange, WHOLE_CLUSTER, changeOfPath, mergeChanges, networkChange, touchesRecords } from './store-change.js';

const K = 'tsoverlay-local:10.20.0.0_24';
const L = 'tsoverlay-local:10.30.0.0_24';
const scope = (c: StoreChange) => (c.whole ? 'whole' : { networks: [...c.networks].sort(), records: [...c.records].sort() });

t.test('a network\'s endpoints and names concern that network; its record too, and says so', async (t) => {
  t.same(scope(changeOfPath(`/endpoints/${K}`)), { networks: [K], records: [] });
  t.same(scope(changeOfPath(`/endpoints/${K}/ep1`)), { networks: [K], records: [] });
  t.same(scope(changeOfPath(`/dnsnames/${K}`)), { networks: [K], records: [] });
  t.same(scope(changeOfPath(`/dnsnames/${K}/ep1`)), { networks: [K], records: [] });
  t.same(scope(changeOfPath(`/networks/${K}`)), { networks: [K], records: [K] });
});

t.test('membership, the network list, pools, the cluster identity and anything unknown concern the whole cluster', async (t) => {
  for (const p of ['/nodes', '/nodes/A', '/networks', '/pools', `/pools/${K}`, `/pools/${K}/10.20.0.5`, '/cluster', '/tombstones', `/tombstones/${K}`, '/vnis/4096', '/netids/abc', '/endpoints', '/dnsnames', '/', '/whatever/x', `/networks/${K}/x`]) {
    t.equal(scope(changeOfPath(p)), 'whole', p);
  }
});

t.test('merged: scopes add up; the whole cluster absorbs any scope', async (t) => {
  t.same(scope(mergeChanges(networkChange(K), networkChange(L, { record: true }))), { networks: [K, L], records: [L] });
  t.equal(scope(mergeChanges(networkChange(K), WHOLE_CLUSTER)), 'whole');
  t.equal(scope(mergeChanges(WHOLE_CLUSTER, networkChange(K))), 'whole');
});

t.test('records: only a record change or the whole cluster may change a network record', async (t) => {
  t.equal(touchesRecords(networkChange(K)), false);
  t.equal(touchesRecords(changeOfPath(`/endpoints/${K}/ep1`)), false);
  t.equal(touchesRecords(changeOfPath(`/networks/${K}`)), true);
  t.equal(touchesRecords(WHOLE_CLUSTER), true);
});

t.test('pending: merged until taken; nothing pending (a periodic or retried pass) is the whole cluster', async (t) => {
  const p = new PendingChanges();
  t.equal(scope(p.take()), 'whole', 'nothing pending');
  p.add(networkChange(K));
  p.add(networkChange(L));
  t.same(scope(p.take()), { networks: [K, L], records: [] });
  t.equal(scope(p.take()), 'whole', 'taken: afresh');
  p.add(networkChange(K));
  p.add(WHOLE_CLUSTER);
  p.add(networkChange(L));
  t.equal(scope(p.take()), 'whole');
});
