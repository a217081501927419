/**
 * `tsoverlay doctor [--json] [--daemon-json PATH]`: the status checks
 * (store session, this node's membership, every difference between the
 * kernel and the store, MTU) and the node's environment (doctor-checks.ts),
 * one line each with ok, warn or fail and the fix. Reads only. Exit 1 when
 * any check fails.
 */
import type { Config } from '../config.js';
import { errorText } from '../errors.js';
import { bridgeName } from '../dataplane/names.js';
import { vxlanOverhead } from '../dataplane/vxlan-mtu.js';
import {
  type Check,
  checkDaemonDns,
  checkIptablesBackend,
  checkKernelFeatures,
  checkPluginSocket,
  checkResolver,
  checkResolverSources,
  checkVxlanFirewall,
  checkVxlanMembers,
  checkVxlanSocket,
} from './doctor-checks.js';
import type { Output } from './status-command.js';
import { readStatus } from './status-command.js';
import type { EntryDifference, StatusReport } from './status-model.js';
import { type Paint, painter, table } from './table.js';

const storeName = (config: Config): string =>
  config.store.kind === 'zk' ? `zk://${config.store.servers.join(',')}${config.store.chroot}` : `file://${config.store.path}`;

/** The repair of one forwarding difference, by hand, if the plugin's next full pass does not come first. */
const entryFix = (d: EntryDifference, resyncS: number): string => {
  const wait = `the plugin's next full pass (every ${resyncS} s) repairs it; by hand:`;
  if (d.table === 'fdb') {
    if (d.problem === 'extra') return `${wait} bridge fdb del ${d.key} dev ${d.vxlan} dst ${d.have ?? ''} self`;
    return `${wait} bridge fdb ${d.key === '00:00:00:00:00:00' ? 'append' : 'replace'} ${d.key} dev ${d.vxlan} dst ${d.want ?? ''} self permanent`;
  }
  if (d.problem === 'extra') return `${wait} ip neigh del ${d.key} dev ${d.vxlan}`;
  return `${wait} ip neigh replace ${d.key} lladdr ${d.want ?? ''} dev ${d.vxlan} nud permanent`;
};

const entryDetail = (d: EntryDifference): string => {
  const what = `${d.network} ${d.vxlan} ${d.table} ${d.key}`;
  switch (d.problem) {
    case 'wrong-vtep':
      return `${what}: wrong VTEP ${d.have ?? '?'}, the store says ${d.want ?? '?'}`;
    case 'wrong-mac':
      return `${what}: wrong MAC ${d.have ?? '?'}, the store says ${d.want ?? '?'}`;
    case 'missing':
      return `${what} → ${d.want ?? '?'}: missing`;
    case 'extra':
      return `${what} → ${d.have ?? '?'}: not in the store`;
    default:
      return what;
  }
};

/** The checks that come from the status report. */
export const statusChecks = (r: StatusReport, config: Config, underlayMtu: number, underlayFamily: 4 | 6): Check[] => {
  const out: Check[] = [];
  const me = r.nodes.find((n) => n.self);
  out.push(
    me?.state === 'alive'
      ? { check: 'membership', status: 'ok', detail: `${r.node} is registered with VTEP ${me.vtep}${me.vtep !== r.vtep ? ` (but this host's underlay is ${r.vtep})` : ''}` }
      : { check: 'membership', status: 'fail', detail: `${r.node} has no membership record: peers send it nothing`, fix: 'start the plugin on this node (same --store, --node-name, --advertise)' },
  );
  if (me?.state === 'alive' && me.vtep !== r.vtep) out[out.length - 1] = { ...out[out.length - 1]!, status: 'fail', fix: 'restart the plugin: it re-registers with its current underlay address' };
  const resyncS = Math.round(config.resyncIntervalMs / 1000);
  for (const d of r.devices) {
    out.push({ check: 'devices', status: 'fail', detail: `${d.network ? `${d.network} ` : ''}${d.device}: ${d.problem}`, fix: `the plugin's next full pass (every ${resyncS} s) repairs it; if it stays, its log says why ("reconcile action failed")` });
  }
  for (const d of r.forwarding) out.push({ check: 'forwarding', status: 'fail', detail: entryDetail(d), fix: entryFix(d, resyncS) });
  if (r.devices.length === 0 && r.forwarding.length === 0) out.push({ check: 'forwarding', status: 'ok', detail: `the kernel holds every device and entry the store asks for (${r.networks.length} network(s))` });
  const overhead = vxlanOverhead(underlayFamily);
  for (const n of r.networks.filter((x) => x.nodes.some((y) => y.node === r.node))) {
    const name = n.names[0] ?? n.key;
    if (n.mtu + overhead <= underlayMtu) out.push({ check: 'mtu', status: 'ok', detail: `${name}: ${n.mtu} + ${overhead} ≤ underlay ${underlayMtu}` });
    else out.push({ check: 'mtu', status: 'fail', detail: `${name}: ${n.mtu} + ${overhead} > underlay ${underlayMtu}: large packets are lost`, fix: `raise the underlay MTU to ${n.mtu + overhead}, or re-create the network with -o com.docker.network.driver.mtu=${underlayMtu - overhead}` });
  }
  if (r.badRecords.length > 0) out.push({ check: 'store records', status: 'warn', detail: `skipped, do not decode: ${r.badRecords.join(' ')}`, fix: 'written by a newer or broken version; see docs/cluster-state.md' });
  return out;
};

const renderChecks = (checks: Check[], paint: Paint): string => {
  const tone = (s: Check['status']) => ({ text: s, tone: s });
  const lines: string[] = [];
  const rows = table(['CHECK', 'RESULT', 'DETAIL'], checks.map((c) => [c.check, tone(c.status), c.detail]), paint);
  lines.push(rows[0] ?? '');
  checks.forEach((c, i) => {
    lines.push(rows[i + 1] ?? '');
    if (c.fix && c.status !== 'ok') lines.push(`    ${paint('dim', 'fix:')} ${c.fix}`);
  });
  const failed = checks.filter((c) => c.status === 'fail').length;
  const warned = checks.filter((c) => c.status === 'warn').length;
  lines.push('', failed ? paint('fail', `${failed} failed, ${warned} warning(s)`) : paint(warned ? 'warn' : 'ok', `no failures, ${warned} warning(s)`));
  return `${lines.join('\n')}\n`;
};

export const runDoctor = async (config: Config, opts: { json: boolean; daemonJson: string }, out: Output): Promise<number> => {
  const checks: Check[] = [];
  let report: StatusReport | undefined;
  try {
    const read = await readStatus(config);
    report = read.report;
    checks.push({ check: 'store', status: 'ok', detail: `${storeName(config)}: session in ${read.connectMs} ms` });
    checks.push(...statusChecks(report, config, read.underlay.mtu, read.underlay.family));
  } catch (e) {
    const fix =
      config.store.kind === 'zk'
        ? 'check that ZooKeeper runs and this node reaches it (TCP 2181), and that --store (and the other options) match the plugin\'s'
        : 'give doctor the plugin\'s --store (and other options), or start the plugin once';
    checks.push({ check: 'store', status: 'fail', detail: `${storeName(config)}: ${errorText(e)}`, fix });
  }
  checks.push(await checkPluginSocket(config.socket));
  checks.push(await checkVxlanSocket(config.vxlanPort, report?.networks.filter((n) => n.nodes.some((x) => x.node === report?.node)).length ?? 0));
  checks.push(await checkVxlanFirewall(config.vxlanPort));
  if (report) checks.push(await checkVxlanMembers(report.nodes.filter((n) => n.state === 'alive').map((n) => ({ node: n.name, vtep: n.vtep }))));
  checks.push(await checkKernelFeatures());
  checks.push(await checkIptablesBackend());
  checks.push(await checkResolver(config.dnsAddress));
  if (report) {
    const here = report.networks.filter((n) => n.nodes.some((x) => x.node === report?.node));
    checks.push(await checkResolverSources(config.dnsAddress, here.map((n) => ({ name: n.names[0] ?? n.key, device: bridgeName(n.vni), subnets: n.subnets }))));
  }
  checks.push(await checkDaemonDns(opts.daemonJson, config.dnsAddress));
  out.stdout.write(opts.json ? `${JSON.stringify({ node: report?.node, checks }, null, 2)}\n` : renderChecks(checks, painter(out.stdout, out.env)));
  return checks.some((c) => c.status === 'fail') ? 1 : 0;
};
