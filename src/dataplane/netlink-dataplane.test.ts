import { pino } from 'pino';
import t from 'tap';
import { NetlinkDataplane } from './netlink-dataplane.js';

t.test('the constructor does no I/O and validates its options', async (t) => {
  const dp = new NetlinkDataplane({ log: pino({ level: 'silent' }), requestTimeoutMs: 1000 });
  await dp.close(); // never opened: nothing to close
  t.throws(() => new NetlinkDataplane({ requestTimeoutMs: 0 }), { code: 'INVALID_OPTION' });
  t.throws(() => new NetlinkDataplane({ requestTimeoutMs: 1.5 }), { code: 'INVALID_OPTION' });
});

t.test('invalid names never reach the kernel', async (t) => {
  const dp = new NetlinkDataplane();
  t.teardown(() => dp.close());
  t.equal(await dp.deleteLink('x'.repeat(20)), false);
  await t.rejects(dp.resolveUnderlay('a/b'), { code: 'INVALID_OPTION', message: '--advertise a/b: not an IP address or interface name' });
});

// Reads only (no root needed): concurrent dumps on one socket must not trip
// over each other (the netlink package keeps one multipart buffer per socket
// and the kernel answers a second concurrent dump with EBUSY).
t.test('concurrent reads on one socket', async (t) => {
  const dp = new NetlinkDataplane();
  t.teardown(() => dp.close());
  const results = await Promise.all(Array.from({ length: 6 }, () => dp.listOwnedLinks()));
  for (const r of results) t.same(r, results[0]);
  await dp.close();
  t.ok(Array.isArray(await dp.listOwnedLinks()), 'usable again after close (reopens lazily)');
});
