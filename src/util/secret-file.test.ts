/** Secret files: only root-owned 0600/0400 regular files are read; the errors name the file, its mode and owner, and the fix. */
import { chmod, chown, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseDigestCredentials, readDigestCredentials, readSecretFile } from './secret-file.js';

const isRoot = process.getuid?.() === 0;

t.test('secret files', { skip: isRoot ? false : 'needs root (files owned by root and by another user)' }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'secret-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'auth');
  await writeFile(file, '  tsoverlay:s3cret\n');

  for (const mode of [0o600, 0o400]) {
    await chmod(file, mode);
    t.same(await readDigestCredentials(file, '--zk-auth-file'), { user: 'tsoverlay', password: 's3cret' }, `mode ${mode.toString(8)} is read`);
  }
  for (const mode of [0o644, 0o640, 0o604, 0o660, 0o700]) {
    await chmod(file, mode);
    const e = (await readSecretFile(file, '--zk-auth-file').catch((x: unknown) => x)) as Error;
    t.equal(e.name, 'SecretFileError', `mode ${mode.toString(8)} refused`);
    t.match(e.message, `--zk-auth-file ${file} has mode 0${mode.toString(8)} and owner uid 0`);
    t.match(e.message, `chmod 600 ${file}`);
    t.notMatch(e.message, 's3cret');
  }
  await chmod(file, 0o600);
  await chown(file, 65534, 0);
  await t.rejects(readSecretFile(file, '--zk-auth-file'), { name: 'SecretFileError', message: /owner uid 65534: .*owned by root/ });
  await chown(file, 0, 0);

  const link = join(dir, 'link');
  await symlink(file, link);
  await t.rejects(readSecretFile(link, '--zk-auth-file'), { message: /is a symbolic link/ });
  await t.rejects(readSecretFile(dir, '--zk-auth-file'), { message: /is not a regular file/ });
  await t.rejects(readSecretFile(join(dir, 'none'), '--zk-auth-file'), { message: /cannot be opened \(ENOENT\)/ });
});

t.test('digest credentials: one line user:password, never quoted in an error', async (t) => {
  t.same(parseDigestCredentials('u:p:with:colons\n', '/f', '--x'), { user: 'u', password: 'p:with:colons' });
  for (const [text, why] of [
    ['nopassword', /no ":"/],
    [':p', /empty user/],
    ['u:', /empty user or password/],
    ['u:p\nv:q', /more than one line/],
    ['a b:p', /white space/],
  ] as const) {
    const e = (() => {
      try {
        parseDigestCredentials(text, '/f', '--zk-auth-file');
        return undefined;
      } catch (x) {
        return x as Error;
      }
    })();
    t.match(e?.message, why, JSON.stringify(text));
    t.match(e?.message, /^--zk-auth-file \/f: .*expected one line "user:password"$/);
  }
});
