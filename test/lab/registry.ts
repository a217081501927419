// A local Docker registry for the lab (Debian package docker-registry,
// Docker distribution 2.8), for `docker plugin push` / `docker plugin install`.
//
// The lab's dockerds live in their own network namespaces, so "127.0.0.1" is
// a different loopback for each of them. The registry therefore runs once per
// host namespace, every instance on 127.0.0.1:<port> and all on ONE storage
// directory (a registry with shared storage, as behind a load balancer): what
// h1 pushes to 127.0.0.1:<port> is what h2 pulls from 127.0.0.1:<port>. Every
// host sees the same registry name (127.0.0.1:<port>/repo), loopback
// registries need no --insecure-registry, and no packet leaves a lab
// namespace's loopback.
//
//   const reg = await LabRegistry.start(lab, [h1, h2]);
//   await h1.docker('plugin', 'push', reg.ref('tsoverlay'));     // 127.0.0.1:<port>/tsoverlay:latest
//   await reg.stop();                                            // also done by lab.destroy()
import { randomInt } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LabHost } from './host.js';
import { run, tailFile } from './proc.js';
import { Rank, TrackedProcess, type StateFile } from './tracked.js';
import { StopWaiting, waitFor } from './wait.js';

export const REGISTRY_BIN = process.env['TSL_REGISTRY'] ?? '/usr/bin/docker-registry';

/** What the registry needs of its lab (Lab satisfies it). */
export interface RegistryLab {
  id: string;
  dir: string;
  state: StateFile;
}

export interface LabRegistryOptions {
  /** TCP port on 127.0.0.1 of every host namespace (default: random 20000-59999). */
  port?: number;
  timeoutMs?: number;
}

export class LabRegistry {
  readonly address: string;
  private readonly procs = new Map<LabHost, TrackedProcess>();

  private constructor(readonly port: number, readonly dir: string, readonly hosts: LabHost[]) {
    this.address = `127.0.0.1:${port}`;
  }

  /** `127.0.0.1:<port>/<repo>:<tag>` */
  ref(repo: string, tag = 'latest'): string {
    return `${this.address}/${repo}:${tag}`;
  }

  /** Start one instance in each host's namespace and wait until each answers GET /v2/. */
  static async start(lab: RegistryLab, hosts: LabHost[], opts: LabRegistryOptions = {}): Promise<LabRegistry> {
    const port = opts.port ?? randomInt(20_000, 60_000);
    const dir = join(lab.dir, 'registry');
    const reg = new LabRegistry(port, dir, hosts);
    await mkdir(join(dir, 'data'), { recursive: true });
    const config = join(dir, 'config.yml');
    // No blob-descriptor cache: several processes share the storage directory.
    await writeFile(config, [
      'version: 0.1',
      'log:',
      '  level: info',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'));
    try {
      await Promise.all(hosts.map(async (h) => {
        const proc = await TrackedProcess.spawn('nsenter', [`--net=/run/netns/${h.ns}`, '--', REGISTRY_BIN, 'serve', config], {
          label: `registry-${h.name}`, rank: Rank.Probe, state: lab.state, logPath: join(dir, `registry-${h.name}.log`),
        });
        reg.procs.set(h, proc);
        h.probes.add(proc); // lab.destroy() stops it if the test does not
        void proc.exited.then(() => h.probes.delete(proc));
        await waitFor(async () => {
          if (!proc.running) throw new StopWaiting(`registry exited ${JSON.stringify(proc.exit)}\n${await tailFile(proc.logPath ?? '', 20)}`);
          const r = await run('nsenter', [`--net=/run/netns/${h.ns}`, '--', '/bin/busybox', 'wget', '-q', '-O', '-', `http://${reg.address}/v2/`],
            { timeoutMs: 5000 });
          return r.code === 0 ? true : Promise.reject(new Error(r.stderr.trim()));
        }, { what: `registry in ${h.name} to answer on ${reg.address}`, timeoutMs: opts.timeoutMs ?? 20_000, intervalMs: 50 });
      }));
    } catch (e) {
      await reg.stop();
      throw e;
    }
    return reg;
  }

  /** Tags of a repository, as the registry lists them (from the first host's namespace). */
  async tags(repo: string): Promise<string[]> {
    const h = this.hosts[0];
    if (!h) return [];
    const r = await run('nsenter', [`--net=/run/netns/${h.ns}`, '--', '/bin/busybox', 'wget', '-q', '-O', '-',
      `http://${this.address}/v2/${repo}/tags/list`], { timeoutMs: 5000 });
    if (r.code !== 0) return [];
    return (JSON.parse(r.stdout) as { tags?: string[] | null }).tags ?? [];
  }

  get running(): boolean {
    return [...this.procs.values()].some((p) => p.running);
  }

  /** SIGTERM every instance and wait; resolves with problems (empty if clean). */
  async stop(): Promise<string[]> {
    const problems: string[] = [];
    await Promise.all([...this.procs.entries()].map(async ([h, p]) => {
      const r = await p.stop(5000);
      if (r.killed) problems.push(`registry in ${h.name} ignored SIGTERM and was killed`);
    }));
    return problems;
  }
}
