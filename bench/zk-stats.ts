/**
 * What the scale-out benchmark reads from the lab's ZooKeeper servers
 * (four-letter words, whitelisted in test/lab/zookeeper.ts) and from a
 * plugin process (/proc/<pid>/stat and status).
 */
import { readFile } from 'node:fs/promises';
import type { ZooKeeperEnsemble } from '../test/lab/index.js';
import { round } from './stats.js';

/** The `mntr` fields we report, summed over the servers (znodes and data size: the largest, every server holds the whole tree). */
export interface ZkSample {
  at: number;
  packetsReceived: number;
  watches: number;
  outstanding: number;
  connections: number;
  znodes: number;
  dataBytes: number;
}

const field = (text: string, name: string): number => Number(new RegExp(`^zk_${name}\\s+(\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);

export async function zkSample(zk: ZooKeeperEnsemble): Promise<ZkSample> {
  const texts = await Promise.all(zk.servers.map((s) => zk.fourLetter(s.id, 'mntr')));
  const sum = (name: string) => texts.reduce((n, t) => n + (field(t, name) || 0), 0);
  const max = (name: string) => Math.max(...texts.map((t) => field(t, name) || 0));
  return {
    at: performance.now(),
    packetsReceived: sum('packets_received'),
    watches: sum('watch_count'),
    outstanding: sum('outstanding_requests'),
    connections: sum('num_alive_connections'),
    znodes: max('znode_count'),
    dataBytes: max('approximate_data_size'),
  };
}

/**
 * Sample `mntr` every `intervalMs` until stopped: the largest number of
 * outstanding requests seen (summed over the servers).
 */
export function watchOutstanding(zk: ZooKeeperEnsemble, intervalMs = 500): { stop(): Promise<{ maxOutstanding: number; samples: number }> } {
  let stopped = false;
  let maxOutstanding = 0;
  let samples = 0;
  const loop = (async () => {
    while (!stopped) {
      const s = await zkSample(zk).catch(() => undefined);
      if (s) {
        samples++;
        maxOutstanding = Math.max(maxOutstanding, s.outstanding);
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return { maxOutstanding, samples };
    },
  };
}

/** Requests per second between two samples (packets received by all servers). */
export const requestsPerS = (a: ZkSample, b: ZkSample): number =>
  round((b.packetsReceived - a.packetsReceived) / ((b.at - a.at) / 1000), 1);

/** One client's connection as `cons` lists it: packets it sent us, and its session. */
export interface ZkClient {
  server: number;
  received: number;
  sessionId: string;
}

/** The connection of the client at `ip` (a lab host's plugin), on whichever server it is. */
export async function zkClientOf(zk: ZooKeeperEnsemble, ip: string): Promise<ZkClient | undefined> {
  for (const s of zk.servers) {
    const text = await zk.fourLetter(s.id, 'cons');
    for (const line of text.split('\n')) {
      if (!line.includes(`/${ip}:`)) continue;
      const received = Number(/recved=(\d+)/.exec(line)?.[1]);
      const sessionId = /sid=(0x[0-9a-f]+)/.exec(line)?.[1];
      if (sessionId) return { server: s.id, received, sessionId };
    }
  }
  return undefined;
}

/** Watches a session holds (`wchc` on its server: the session id, then one indented path per watch). */
export async function zkWatchesOf(zk: ZooKeeperEnsemble, c: ZkClient): Promise<number> {
  const text = await zk.fourLetter(c.server, 'wchc');
  let mine = false;
  let n = 0;
  for (const line of text.split('\n')) {
    if (/^0x[0-9a-f]+/.test(line)) mine = line.trim() === c.sessionId;
    else if (mine && line.trim().startsWith('/')) n++;
  }
  return n;
}

/** CPU seconds (user + system) a process has used so far. */
export async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // fields after the command name (which may hold spaces) : state is field 3, utime 14, stime 15
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100; // USER_HZ is 100 on Linux
}

export async function rssMiBOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return round(Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) / 1024, 1);
}
