import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fastify from 'fastify';
import t from 'tap';
import { openSocket, SOCKET_MODE } from './lifecycle.js';

t.test('the plugin socket is mode 0600 whatever the umask', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tsoverlay-sock-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const umask of [0o000, 0o022, 0o002]) {
    const server = fastify();
    const path = join(dir, `plugin-${umask.toString(8)}.sock`);
    const before = process.umask(umask);
    try {
      await openSocket(server, path);
      const st = await stat(path);
      t.ok(st.isSocket(), `umask ${umask.toString(8)}: a socket`);
      t.equal(st.mode & 0o777, SOCKET_MODE, `umask ${umask.toString(8)}: mode 0600`);
      t.equal(process.umask(), umask, `umask ${umask.toString(8)}: the process umask is given back`);
    } finally {
      await server.close();
      process.umask(before);
    }
  }
  t.equal(SOCKET_MODE, 0o600);
});
