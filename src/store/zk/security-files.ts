/**
 * The files behind the ZooKeeper security settings, read once at start:
 * digest credentials (--zk-auth-file) and TLS material (--zk-tls-ca,
 * --zk-tls-cert, --zk-tls-key). Secrets (the credentials, the private key)
 * must be root-owned 0600/0400 files (src/util/secret-file.ts); the CA and
 * the certificate are public.
 */
import { readFile } from 'node:fs/promises';
import { readDigestCredentials, readSecretFile } from '../../util/secret-file.js';
import type { ZkAuth } from './acl.js';
import type { ZkTls } from './options.js';

export interface ZkSecurityPaths {
  zkAuthFile?: string;
  zkTlsCa?: string;
  zkTlsCert?: string;
  zkTlsKey?: string;
}

export interface ZkSecurity {
  auth?: ZkAuth;
  tls?: ZkTls;
}

const readPublic = async (path: string, setting: string): Promise<string> => {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`${setting} ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
};

/** Read and check the files the settings name; throws a clear error (never quoting a secret). */
export const readZkSecurity = async (p: ZkSecurityPaths): Promise<ZkSecurity> => {
  const auth = p.zkAuthFile !== undefined ? await readDigestCredentials(p.zkAuthFile, '--zk-auth-file') : undefined;
  let tls: ZkTls | undefined;
  if (p.zkTlsCa !== undefined) {
    const ca = await readPublic(p.zkTlsCa, '--zk-tls-ca');
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`--zk-tls-ca ${p.zkTlsCa} holds no PEM certificate`);
    tls = { ca };
    if (p.zkTlsCert !== undefined && p.zkTlsKey !== undefined) {
      tls.cert = await readPublic(p.zkTlsCert, '--zk-tls-cert');
      tls.key = await readSecretFile(p.zkTlsKey, '--zk-tls-key');
    }
  }
  return { ...(auth ? { auth } : {}), ...(tls ? { tls } : {}) };
};
