/** What the report states about the machine the numbers come from. */
import { readFile } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { run } from '../test/lab/index.js';

export interface MachineFacts {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  docker: string;
  zookeeper: string;
  node: string;
  iperf3: string;
  sockperf: string;
}

const firstLine = async (cmd: string, args: string[], pattern?: RegExp): Promise<string> => {
  const r = await run(cmd, args, { timeoutMs: 10_000 }).catch(() => undefined);
  const text = `${r?.stdout ?? ''}${r?.stderr ?? ''}`;
  const m = pattern ? pattern.exec(text)?.[1] : text.split('\n')[0];
  return m?.trim() || 'unknown';
};

const debVersion = (pkg: string): Promise<string> => firstLine('dpkg-query', ['-W', '-f', '${Version}', pkg]);

export async function machineFacts(): Promise<MachineFacts> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  return {
    cpu: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    docker: await firstLine('dockerd', ['--version'], /version ([^,\s]+)/),
    zookeeper: await debVersion('zookeeper'),
    node: process.version,
    iperf3: await debVersion('iperf3'),
    sockperf: await debVersion('sockperf'),
  };
}
