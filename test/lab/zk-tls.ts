/**
 * TLS material for a test ZooKeeper, made in a directory with `openssl` and
 * `keytool` (the JRE the zookeeper package brings): a CA, a server
 * certificate for 127.0.0.1 / the given IPs and names (IP and DNS SANs), a
 * client certificate, and a second, unrelated CA (a wrong CA). The server
 * gets a PKCS#12 key store and a JKS trust store holding the CA (to verify
 * client certificates); zkTlsConfig() gives the zoo.cfg lines.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './proc.js';

export interface ZkTlsMaterial {
  dir: string;
  /** PEM files for the client side. */
  ca: string;
  clientCert: string;
  clientKey: string;
  /** A CA that signed nothing here. */
  wrongCa: string;
  keyStore: string;
  trustStore: string;
  password: string;
}

const openssl = (...args: string[]): Promise<unknown> => run('openssl', args);

/** Make the CA, the server and client certificates and the server's stores in `dir`. */
export const makeZkTls = async (dir: string, sans: string[] = ['IP:127.0.0.1']): Promise<ZkTlsMaterial> => {
  await mkdir(dir, { recursive: true });
  const f = (name: string): string => join(dir, name);
  const password = 'zk-test-store';
  const days = ['-days', '2'];
  for (const ca of ['ca', 'wrong-ca']) {
    await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f(`${ca}.key`), '-out', f(`${ca}.pem`), '-subj', `/CN=tsoverlay test ${ca}`, ...days);
  }
  const leaf = async (name: string, cn: string, ext: string): Promise<void> => {
    await openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`);
    await writeFile(f(`${name}.ext`), `${ext}\n`);
    await openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.pem`), '-extfile', f(`${name}.ext`), ...days);
    await chmod(f(`${name}.key`), 0o600);
  };
  await leaf('server', 'zookeeper', `subjectAltName=${sans.join(',')}`);
  await leaf('client', 'tsoverlay', 'extendedKeyUsage=clientAuth');
  await openssl('pkcs12', '-export', '-in', f('server.pem'), '-inkey', f('server.key'), '-name', 'server', '-out', f('server.p12'), '-passout', `pass:${password}`);
  await run('keytool', ['-importcert', '-noprompt', '-alias', 'ca', '-file', f('ca.pem'), '-keystore', f('trust.jks'), '-storetype', 'JKS', '-storepass', password]);
  return {
    dir,
    ca: f('ca.pem'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
    wrongCa: f('wrong-ca.pem'),
    keyStore: f('server.p12'),
    trustStore: f('trust.jks'),
    password,
  };
};

/** zoo.cfg lines of a TLS port (Netty; client certificates required if `clientAuth` is 'need'). */
export const zkTlsConfig = (m: ZkTlsMaterial, securePort: number, address: string, clientAuth: 'need' | 'want' | 'none'): string[] => [
  `secureClientPort=${securePort}`,
  `secureClientPortAddress=${address}`,
  'serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory',
  `ssl.keyStore.location=${m.keyStore}`,
  `ssl.keyStore.password=${m.password}`,
  'ssl.keyStore.type=PKCS12',
  `ssl.trustStore.location=${m.trustStore}`,
  `ssl.trustStore.password=${m.password}`,
  'ssl.trustStore.type=JKS',
  `ssl.clientAuth=${clientAuth}`,
];
