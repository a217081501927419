/**
 * TLS to a real ZooKeeper 3.8 (secureClientPort, Netty, ssl.clientAuth=need):
 * the key store and trust store are made here with openssl and keytool. A
 * store with the right CA and a client certificate works (with digest auth
 * on top); a plaintext client on the TLS port, a wrong CA, a host name the
 * certificate does not carry, TLS on the plain port and a missing client
 * certificate are refused, each with a message that says what to check.
 * Needs TSOVERLAY_IT=1.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import type { Log } from '../../src/log.js';
import { ZkKvStore, type ZkSessionOptions } from '../../src/store/zk-kv-store.js';
import { waitFor } from '../lab/wait.js';
import { zkTlsClasspath } from '../lab/zk-java.js';
import { TestZooKeeper, freePort } from '../lab/zk-standalone.js';
import { type ZkTlsMaterial, makeZkTls, zkTlsConfig } from '../lab/zk-tls.js';

if (process.env['TSOVERLAY_IT'] !== '1') {
  t.plan(0, 'needs a real ZooKeeper (Java + the Debian zookeeper package, openssl): set TSOVERLAY_IT=1');
} else {
  let zk: TestZooKeeper | undefined;
  let tls: ZkTlsMaterial | undefined;
  let securePort = 0;
  t.before(async () => {
    securePort = await freePort();
    zk = await TestZooKeeper.create({
      classpath: zkTlsClasspath(),
      extraConfig: async (dir) => {
        tls = await makeZkTls(join(dir, 'tls'));
        return zkTlsConfig(tls, securePort, '127.0.0.1', 'need');
      },
    });
    await zk.start();
    // ruok answers on the plain port; the TLS port may bind a moment later
    await waitFor(
      () =>
        new Promise<boolean>((resolve) => {
          const s = connect(securePort, '127.0.0.1', () => {
            s.destroy();
            resolve(true);
          });
          s.on('error', () => resolve(false));
        }),
      { what: `the TLS port ${securePort} to accept connections`, timeoutMs: 30_000, intervalMs: 100 },
    );
  });
  t.teardown(() => zk?.destroy());

  const logged: string[] = [];
  const line = (level: string) => (obj: object, msg: string) => logged.push(`${level}: ${msg} ${JSON.stringify(obj)}`);
  const log: Log = { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
  const chroot = `/zt-${randomBytes(4).toString('hex')}`;
  const m = (): ZkTlsMaterial => {
    if (!tls) throw new Error('no TLS material');
    return tls;
  };
  const pem = (path: string): Promise<string> => readFile(path, 'utf8');
  const clientTls = async (ca = m().ca): Promise<NonNullable<ZkSessionOptions['tls']>> => ({
    ca: await pem(ca),
    cert: await pem(m().clientCert),
    key: await pem(m().clientKey),
  });
  const open = (extra: Partial<ZkSessionOptions>, server = `127.0.0.1:${securePort}`): Promise<ZkKvStore> =>
    ZkKvStore.open({ servers: [server], chroot, sessionTimeoutMs: 6000, connectTimeoutMs: 3000, log, ...extra });

  t.test('TLS with the right CA and a client certificate: the store works (and digest auth with it)', async (t) => {
    const auth = { user: 'tsoverlay', password: randomBytes(12).toString('hex') };
    // the JVM's first TLS handshakes are slow (seconds on a busy 2-core machine)
    const kv = await open({ tls: await clientTls(), auth, connectTimeoutMs: 20_000 });
    t.teardown(() => kv.close());
    await kv.commit([{ type: 'create', path: '/networks', data: 'over tls' }]);
    t.match(await kv.get('/networks'), { data: 'over tls', version: 0 });
    const peer = await open({ tls: await clientTls(), auth, connectTimeoutMs: 20_000 });
    t.teardown(() => peer.close());
    t.equal((await peer.get('/networks'))?.data, 'over tls', 'a second TLS client sees it');
  });

  t.test('refused, with a message that says what to check', async (t) => {
    await t.rejects(open({}), {
      name: 'KvUnavailable',
      message: /cannot reach ZooKeeper at 127\.0\.0\.1:\d+ \(no session within 3000 ms; last error: .*\): is this a TLS port \(secureClientPort\)\? set --zk-tls-ca/,
    }, 'plaintext on the TLS port');
    await t.rejects(open({ tls: await clientTls(m().wrongCa) }), {
      name: 'KvUnavailable',
      message: /over TLS .*last error: .*(self.signed|unable to verify|certificate).*: the server certificate is not trusted; check --zk-tls-ca/i,
    }, 'a CA that did not sign the server certificate');
    await t.rejects(open({ tls: await clientTls() }, `localhost:${securePort}`), {
      name: 'KvUnavailable',
      message: /Hostname\/IP does not match.*the certificate names this host or IP/,
    }, 'a host name the certificate does not carry (it has IP:127.0.0.1 only)');
    await t.rejects(open({ tls: await clientTls() }, zk?.address), {
      name: 'KvUnavailable',
      message: /over TLS .*: the server did not speak TLS there; is this its secureClientPort\?/,
    }, 'TLS on the plain port');
    await t.rejects(open({ tls: { ca: await pem(m().ca) } }), { name: 'KvUnavailable', message: /over TLS/ }, 'no client certificate for a server that needs one');
    t.ok(logged.some((l) => l.startsWith('warn: cannot connect to ZooKeeper')), 'failed connections are logged with their reason');
  });
}
