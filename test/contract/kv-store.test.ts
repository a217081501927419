/**
 * Contract of the KvStore port, run against every implementation so they
 * behave alike. The ZooKeeper adapter runs against a real server when
 * TSOVERLAY_IT=1 (Java + the Debian zookeeper package).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { FileKvStore } from '../../src/store/file-kv-store.js';
import type { KvStore } from '../../src/store/kv-store.js';
import { MemoryKvStore } from '../../src/store/memory-kv-store.js';
import { ZkKvStore } from '../../src/store/zk-kv-store.js';
import { procStartTime } from '../lab/proc.js';
import { Rank, StateFile, TrackedProcess } from '../lab/tracked.js';
import { waitFor } from '../lab/wait.js';

// ---- a standalone ZooKeeper for this file ----------------------------------
// (the same helper is in zk-session.test.ts)

const ZK_CLASSPATH = process.env['TSL_ZK_CLASSPATH'] ?? '/etc/zookeeper/conf:/usr/share/java/zookeeper.jar';

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });

const fourLetter = (port: number, word: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    s.setTimeout(2000, () => s.destroy(new Error(`no answer to ${word}`)));
    s.on('connect', () => s.write(word));
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.on('error', reject);
    s.on('close', () => resolve(out));
  });

/**
 * ZooKeeper on 127.0.0.1 and a free port, data in a lab directory
 * (/tmp/tsl-<id> with lab.state) so scripts/lab-sweep.sh stops it if this
 * process dies before its teardown.
 */
class TestZooKeeper {
  private proc: TrackedProcess | undefined;
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly state: StateFile,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  static async create(): Promise<TestZooKeeper> {
    const dir = join(process.env['TSL_BASE_DIR'] ?? '/tmp', `tsl-${randomBytes(3).toString('hex')}`);
    await mkdir(join(dir, 'data'), { recursive: true });
    const state = new StateFile(join(dir, 'lab.state'));
    state.append(`owner ${process.pid} ${(await procStartTime(process.pid)) ?? '0'}`);
    const zk = new TestZooKeeper(dir, await freePort(), state);
    const cfg = [
      'tickTime=500', // sessions of 1..10 s
      `dataDir=${join(dir, 'data')}`,
      `clientPort=${zk.port}`,
      'clientPortAddress=127.0.0.1',
      'admin.enableServer=false',
      '4lw.commands.whitelist=ruok,srvr,mntr',
      'maxClientCnxns=0',
      'forceSync=no',
    ];
    await writeFile(join(dir, 'zoo.cfg'), `${cfg.join('\n')}\n`);
    return zk;
  }

  async start(): Promise<void> {
    if (this.proc?.running) throw new Error('ZooKeeper already running');
    const proc = await TrackedProcess.spawn(
      'java',
      ['-Xmx256m', `-Dzookeeper.log.dir=${this.dir}`, '-cp', ZK_CLASSPATH, 'org.apache.zookeeper.server.quorum.QuorumPeerMain', join(this.dir, 'zoo.cfg')],
      { label: `zookeeper-test-${this.port}`, rank: Rank.ZooKeeper, state: this.state, logPath: join(this.dir, 'zookeeper.log') },
    );
    this.proc = proc;
    try {
      await waitFor(
        async () => {
          if (!proc.running) throw new Error(`ZooKeeper exited ${JSON.stringify(proc.exit)}`);
          return fourLetter(this.port, 'ruok');
        },
        { what: `ZooKeeper on ${this.address} to answer imok`, until: (v) => v === 'imok', timeoutMs: 60_000, intervalMs: 100 },
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await proc.logTail(30)}`);
    }
  }

  signal(sig: NodeJS.Signals): void {
    this.proc?.signal(sig);
  }

  /** SIGTERM (after SIGCONT, in case it is paused) and wait until it has exited. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p?.running) return;
    p.signal('SIGCONT');
    await p.stop(15_000);
  }

  async destroy(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

// ---- the implementations ---------------------------------------------------

const impls: Array<[string, (t: Test) => Promise<KvStore>]> = [
  ['memory', async () => new MemoryKvStore()],
  [
    'file',
    async (t) => {
      const dir = await mkdtemp(join(tmpdir(), 'tsoverlay-kv-'));
      t.teardown(() => rm(dir, { recursive: true, force: true }));
      return FileKvStore.open(join(dir, 'state.json'));
    },
  ],
];

// ZooKeeper: one server for the file, a fresh chroot per test.
if (process.env['TSOVERLAY_IT'] === '1') {
  let server: TestZooKeeper | undefined;
  t.before(async () => {
    server = await TestZooKeeper.create();
    await server.start();
  });
  t.teardown(async () => {
    await server?.destroy();
  });
  impls.push([
    'zookeeper',
    async (t) => {
      if (!server) throw new Error('ZooKeeper did not start');
      const kv = await ZkKvStore.open({ servers: [server.address], chroot: `/kvtest-${randomBytes(4).toString('hex')}` });
      t.teardown(() => kv.close());
      return kv;
    },
  ]);
} else {
  t.test('zookeeper: the KvStore contract', { skip: 'needs a real ZooKeeper (Java + the Debian zookeeper package): set TSOVERLAY_IT=1' }, async () => {});
}

const conflict = (reason: string) => ({ name: 'KvConflict', reason });

for (const [name, make] of impls) {
  t.test(`${name}: create, get, children`, async (t) => {
    const kv = await make(t);
    await kv.commit([{ type: 'create', path: '/a', data: 'x' }]);
    await kv.commit([{ type: 'create', path: '/a/c2', data: '2' }, { type: 'create', path: '/a/c1', data: '1' }]);
    t.same(await kv.get('/a'), { data: 'x', version: 0 });
    t.same(await kv.children('/a'), ['c1', 'c2']);
    t.same(await kv.children('/missing'), []);
    t.equal(await kv.get('/missing'), undefined);
    await t.rejects(kv.commit([{ type: 'create', path: '/a', data: 'y' }]), conflict('exists'));
    await t.rejects(kv.commit([{ type: 'create', path: '/no/parent', data: '' }]), conflict('missing'));
  });

  t.test(`${name}: versions and compare-and-set`, async (t) => {
    const kv = await make(t);
    await kv.commit([{ type: 'create', path: '/n', data: 'v0' }]);
    await kv.commit([{ type: 'set', path: '/n', data: 'v1', version: 0 }]);
    t.same(await kv.get('/n'), { data: 'v1', version: 1 });
    await t.rejects(kv.commit([{ type: 'set', path: '/n', data: 'stale', version: 0 }]), conflict('version'));
    await kv.commit([{ type: 'set', path: '/n', data: 'any', version: -1 }]);
    t.equal((await kv.get('/n'))?.version, 2);
    await t.rejects(kv.commit([{ type: 'check', path: '/n', version: 1 }]), conflict('version'));
    await t.rejects(kv.commit([{ type: 'delete', path: '/n', version: 0 }]), conflict('version'));
  });

  t.test(`${name}: a refused commit applies nothing`, async (t) => {
    const kv = await make(t);
    await kv.commit([{ type: 'create', path: '/p', data: '' }]);
    await t.rejects(
      kv.commit([
        { type: 'create', path: '/p/new', data: '' },
        { type: 'set', path: '/p', data: 'changed', version: 7 },
      ]),
      conflict('version'),
    );
    t.same(await kv.children('/p'), []);
    t.same(await kv.get('/p'), { data: '', version: 0 });
  });

  t.test(`${name}: delete needs an empty node`, async (t) => {
    const kv = await make(t);
    await kv.commit([{ type: 'create', path: '/d', data: '' }, { type: 'create', path: '/d/x', data: '' }]);
    await t.rejects(kv.commit([{ type: 'delete', path: '/d', version: -1 }]), conflict('not-empty'));
    await kv.commit([{ type: 'delete', path: '/d/x', version: -1 }, { type: 'delete', path: '/d', version: -1 }]);
    t.equal(await kv.get('/d'), undefined);
    await t.rejects(kv.commit([{ type: 'delete', path: '/d', version: -1 }]), conflict('missing'));
  });

  t.test(`${name}: watches fire on data and children changes`, async (t) => {
    const kv = await make(t);
    await kv.commit([{ type: 'create', path: '/w', data: '' }]);
    let fired = 0;
    const seen = new Promise<void>((resolve) => {
      const off = kv.watch('/w', () => {
        fired++;
        off();
        resolve();
      });
    });
    await kv.commit([{ type: 'create', path: '/w/child', data: '' }]);
    await seen;
    t.equal(fired, 1);
  });
}

t.test('file: state survives reopening, and the file is replaced atomically', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tsoverlay-kv-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'sub', 'state.json');
  const a = await FileKvStore.open(file);
  await a.commit([{ type: 'create', path: '/k', data: 'hello' }]);
  await a.commit([{ type: 'set', path: '/k', data: 'world', version: 0 }]);
  await a.close();
  const b = await FileKvStore.open(file);
  t.same(await b.get('/k'), { data: 'world', version: 1 });
  t.match(JSON.parse(await readFile(file, 'utf8')), { format: 'tsoverlay-kv/1' });
});

t.test('file: a corrupt state file stops startup with a clear message', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tsoverlay-kv-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { writeFile } = await import('node:fs/promises');
  await writeFile(join(dir, 's.json'), '{not json');
  await t.rejects(FileKvStore.open(join(dir, 's.json')), /not valid JSON; move it away/);
  await writeFile(join(dir, 's.json'), '{"format":"other"}');
  await t.rejects(FileKvStore.open(join(dir, 's.json')), /unknown format/);
});
