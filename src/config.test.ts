import t from 'tap';
import { ConfigError, helpText, loadConfig } from './config.js';

t.test('defaults', async (t) => {
  const c = loadConfig([], {});
  t.equal(c.socket, '/run/docker/plugins/tsoverlay.sock');
  t.same(c.store, { kind: 'file', path: '/var/lib/tsoverlay/state.json' });
  t.equal(c.advertise, undefined);
  t.equal(c.dockerHost, 'unix:///var/run/docker.sock');
  t.equal(c.logLevel, 'info');
  t.equal(c.vxlanPort, 4789);
  t.equal(c.nodeName, undefined);
  t.equal(c.defaultPoolSize, 24);
  t.equal(c.defaultMode, 'macvlan');
});

t.test('default mode', async (t) => {
  t.equal(loadConfig(['--default-mode', 'bridge'], {}).defaultMode, 'bridge');
  t.equal(loadConfig([], { TSOVERLAY_DEFAULT_MODE: 'bridge' }).defaultMode, 'bridge');
  t.throws(() => loadConfig([], { TSOVERLAY_DEFAULT_MODE: 'ipvlan' }), /--default-mode "ipvlan" must be bridge or macvlan/);
});

t.test('flags win over environment', async (t) => {
  const env = { TSOVERLAY_SOCKET: '/tmp/env.sock', TSOVERLAY_VXLAN_PORT: '4790', TSOVERLAY_ADVERTISE: 'eth1' };
  const c = loadConfig(['--socket', '/tmp/flag.sock'], env);
  t.equal(c.socket, '/tmp/flag.sock');
  t.equal(c.vxlanPort, 4790);
  t.equal(c.advertise, 'eth1');
  const zk = loadConfig(['--store', 'zk://zk1:2181,zk2:2181/tso'], {});
  t.same(zk.store, { kind: 'zk', servers: ['zk1:2181', 'zk2:2181'], chroot: '/tso' });
});

t.test('every problem is listed in one error', async (t) => {
  try {
    loadConfig(['--socket', 'rel.sock', '--store', 'etcd://x', '--vxlan-port', '70000', '--log-level', 'loud', '--docker-host', 'http://x', '--advertise', 'not an iface!'], {});
    t.fail('should throw');
  } catch (e) {
    t.ok(e instanceof ConfigError);
    const p = (e as ConfigError).problems;
    t.equal(p.length, 6, p.join('\n'));
    t.match((e as Error).message, /--vxlan-port "70000" must be a whole number from 1 to 65535/);
  }
  t.throws(() => loadConfig(['--bogus', 'x'], {}), ConfigError);
  t.throws(() => loadConfig([], { TSOVERLAY_VXLAN_PORT: 'abc' }), /vxlan-port "abc"/);
});

t.test('help names every flag and variable', async (t) => {
  const h = helpText();
  for (const w of ['--socket', 'TSOVERLAY_SOCKET', '--store', 'TSOVERLAY_STORE', '--advertise', 'TSOVERLAY_ADVERTISE', '--docker-host', 'TSOVERLAY_DOCKER_HOST', '--log-level', 'TSOVERLAY_LOG_LEVEL', '--vxlan-port', 'TSOVERLAY_VXLAN_PORT', '--default-mode', 'TSOVERLAY_DEFAULT_MODE']) {
    t.match(h, w);
  }
});

t.test('metrics address: off by default, ip:port, clear refusals', async (t) => {
  t.equal(loadConfig([], {}).metricsAddress, undefined, 'no listener unless asked');
  t.same(loadConfig(['--metrics-address', '127.0.0.1:9464'], {}).metricsAddress, { host: '127.0.0.1', port: 9464 });
  t.same(loadConfig([], { TSOVERLAY_METRICS_ADDRESS: '[::1]:9100' }).metricsAddress, { host: '::1', port: 9100 });
  t.equal(loadConfig(['--metrics-address', 'off'], { TSOVERLAY_METRICS_ADDRESS: '0.0.0.0:1' }).metricsAddress, undefined, 'the flag wins; off is none');
  for (const bad of ['9464', 'localhost:9464', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', '::1:9464', '[::1]', '10.0.0.300:80', ':9464']) {
    t.throws(
      () => loadConfig(['--metrics-address', bad], {}),
      { message: new RegExp(`--metrics-address "${bad.replace(/[[\].]/g, '\\$&')}" must be ip:port with a port from 1 to 65535 \\(e\\.g\\. 127\\.0\\.0\\.1:9464 or \\[::1\\]:9464\\), or "off"`) },
      `"${bad}" refused`,
    );
  }
  t.match(helpText(), /--metrics-address VALUE[\s\S]*env TSOVERLAY_METRICS_ADDRESS\n/, 'help shows it with no default');
});

t.test('ZooKeeper auth and TLS settings: absolute paths; cert and key together, with a CA', async (t) => {
  const none = loadConfig([], {});
  t.equal(none.zkAuthFile, undefined);
  t.equal(none.zkTlsCa, undefined);
  const c = loadConfig(['--zk-tls-cert', '/etc/tso/c.pem', '--zk-tls-key', '/etc/tso/k.pem'], {
    TSOVERLAY_ZK_AUTH_FILE: '/etc/tso/zk-auth',
    TSOVERLAY_ZK_TLS_CA: '/etc/tso/ca.pem',
  });
  t.match(c, { zkAuthFile: '/etc/tso/zk-auth', zkTlsCa: '/etc/tso/ca.pem', zkTlsCert: '/etc/tso/c.pem', zkTlsKey: '/etc/tso/k.pem' });
  t.throws(() => loadConfig(['--zk-auth-file', 'zk-auth'], {}), /--zk-auth-file "zk-auth" must be an absolute path/);
  t.throws(() => loadConfig(['--zk-tls-ca', '/ca', '--zk-tls-cert', '/c'], {}), /--zk-tls-cert and --zk-tls-key go together/);
  t.throws(() => loadConfig(['--zk-tls-cert', '/c', '--zk-tls-key', '/k'], {}), /need --zk-tls-ca/);
});

t.test('dns client rate: 100 by default, a flag or variable, refused outside 1-100000', async (t) => {
  t.equal(loadConfig([], {}).dnsClientRate, 100);
  t.equal(loadConfig([], { TSOVERLAY_DNS_CLIENT_RATE: '20' }).dnsClientRate, 20);
  t.equal(loadConfig(['--dns-client-rate', '500'], { TSOVERLAY_DNS_CLIENT_RATE: '20' }).dnsClientRate, 500, 'the flag wins');
  for (const bad of ['0', '1.5', 'many', '100001']) {
    t.throws(() => loadConfig(['--dns-client-rate', bad], {}), { message: new RegExp(`--dns-client-rate "${bad.replace('.', '\\.')}" must be a whole number from 1 to 100000`) });
  }
});
t.test('dns client rate: a negative rate in the variable is refused', async (t) => {
  t.throws(() => loadConfig([], { TSOVERLAY_DNS_CLIENT_RATE: '-5' }), { message: /--dns-client-rate "-5" must be a whole number from 1 to 100000/ });
});
