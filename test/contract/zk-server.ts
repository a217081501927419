/**
 * Test helper of the ZooKeeper contract tests: one standalone ZooKeeper for a
 * test file, started before its tests and destroyed after them — or the
 * file is planned empty, with the reason, when TSOVERLAY_IT is not set.
 */
import t from 'tap';
import { TestZooKeeper } from '../lab/zk-standalone.js';

/** Run `suite` with a server getter if real ZooKeeper tests are on. */
export const withZooKeeper = (suite: (zk: () => TestZooKeeper) => void): void => {
  if (process.env['TSOVERLAY_IT'] !== '1') {
    t.plan(0, 'needs a real ZooKeeper (Java + the Debian zookeeper package): set TSOVERLAY_IT=1');
    return;
  }
  let server: TestZooKeeper | undefined;
  t.before(async () => {
    server = await TestZooKeeper.create();
    await server.start();
  });
  t.teardown(async () => {
    await server?.destroy();
  });
  suite(() => {
    if (!server) throw new Error('ZooKeeper did not start');
    return server;
  });
};
