/**
 * `tsoverlay status` for people: short aligned tables (nodes, networks, this
 * node's endpoints, then where the kernel differs from the store) and a last
 * line saying whether this node is converged. `--json` prints the report
 * itself (status-model.ts) instead.
 */
import { type Cell, type Paint, age, plain, table } from './table.js';
import type { DeviceDifference, EntryDifference, NetworkStatus, NodeStatus, StatusReport } from './status-model.js';

const nodeRows = (r: StatusReport, paint: Paint): string[] => {
  /** An ISO time as `2026-12-05T10:01:02Z (5m)`: to the second, with its age at the report's time. */
  const when = (iso: string): string => {
    const t = Date.parse(iso);
    return Number.isNaN(t) ? iso : `${iso.replace(/\.\d+Z$/, 'Z')} (${age(Math.max(0, Date.parse(r.at) - t) / 1000)})`;
  };
  const since = (n: NodeStatus): string => (n.startedAt ? when(n.startedAt) : '-');
  const state = (n: NodeStatus): string => {
    if (n.state === 'alive') return 'alive';
    return n.goneSince ? `gone since ${when(n.goneSince)}` : 'gone (since unknown)';
  };
  return table(
    ['NODE', 'VTEP', 'VERSION', 'STATE', 'STARTED', 'SESSION'],
    r.nodes.map((n): Cell[] => [
      n.self ? `${n.name} *` : n.name,
      n.vtep || '-',
      n.version ?? '-',
      { text: state(n), tone: n.state === 'alive' ? 'ok' : 'fail' },
      since(n),
      n.sessionAgeS !== undefined ? age(n.sessionAgeS) : '-',
    ]),
    paint,
  );
};

const optionsText = (n: NetworkStatus): string => {
  const opts = Object.entries(n.options).map(([k, v]) => `${k}=${v}`);
  if (n.internal) opts.unshift('internal');
  if (n.deleted) opts.unshift('deleted');
  return opts.join(',') || '-';
};

const networkRows = (r: StatusReport, paint: Paint): string[] =>
  table(
    ['NETWORK', 'VNI', 'SUBNETS', 'LAYOUT', 'MTU', 'OPTIONS', 'NODES (ENDPOINTS)'],
    r.networks.map((n): Cell[] => [
      n.names.join(',') || n.key,
      String(n.vni),
      n.subnets.join(','),
      n.layout,
      String(n.mtu),
      optionsText(n),
      n.nodes.map((x) => `${x.node}(${x.endpoints})`).join(' '),
    ]),
    paint,
  );

const endpointRows = (r: StatusReport, paint: Paint): string[] =>
  table(
    ['NETWORK', 'ENDPOINT', 'ADDRESS', 'MAC', 'DEVICE', 'JOINED'],
    r.endpoints.map((e): Cell[] => [e.network, e.id.slice(0, 12), [e.ipv4, e.ipv6].filter(Boolean).join(',') || '-', e.mac, e.device, e.joined ? 'yes' : 'no']),
    paint,
  );

const differenceRows = (devices: DeviceDifference[], entries: EntryDifference[], paint: Paint): string[] =>
  table(
    ['NETWORK', 'DEVICE', 'ENTRY', 'PROBLEM', 'STORE WANTS', 'KERNEL HAS'],
    [
      ...devices.map((d): Cell[] => [d.network ?? '-', d.device, '-', { text: d.problem, tone: 'fail' }, '-', '-']),
      ...entries.map((e): Cell[] => [
        e.network,
        e.vxlan,
        `${e.table} ${e.key}`,
        { text: e.problem, tone: 'fail' },
        e.want ?? '-',
        e.have ?? '-',
      ]),
    ],
    paint,
  );

export const renderStatus = (r: StatusReport, paint: Paint = plain): string => {
  const out: string[] = [];
  const section = (title: string, lines: string[]): void => {
    out.push(paint('head', title), ...lines, '');
  };
  section(`Nodes (* = this node, ${r.node}, VTEP ${r.vtep})`, r.nodes.length ? nodeRows(r, paint) : ['(none)']);
  section('Networks', r.networks.length ? networkRows(r, paint) : ['(none)']);
  section(`Endpoints on ${r.node}`, r.endpoints.length ? endpointRows(r, paint) : ['(none)']);
  const differences = r.devices.length + r.forwarding.length;
  if (differences > 0) section(`Kernel vs store on ${r.node}`, differenceRows(r.devices, r.forwarding, paint));
  if (r.kept.length > 0) out.push(paint('dim', `kept (not in the store, never removed without a Docker removal): ${r.kept.join(' ')}`));
  if (r.badRecords.length > 0) out.push(paint('warn', `store records skipped (do not decode): ${r.badRecords.join(' ')}`));
  out.push(
    differences === 0
      ? paint('ok', `converged: the kernel of ${r.node} holds what the store asks for`)
      : paint('fail', `NOT converged: ${differences} difference${differences === 1 ? '' : 's'} on ${r.node} (the plugin's next full pass repairs them; "tsoverlay doctor" says more)`),
  );
  return `${out.join('\n')}\n`;
};
