/**
 * `tsoverlay status [--json]`: the cluster as the store tells it and
 * whether this node's kernel holds what the store asks of it. Reads only.
 * Exit 0: converged; 1: a difference; 3: the store or the kernel could not
 * be read.
 */
import type { Config } from '../config.js';
import type { Underlay } from '../dataplane/dataplane.js';
import { errorText } from '../errors.js';
import { openReadOnly } from './open-readonly.js';
import { readSnapshot } from './status-read.js';
import { type StatusReport, statusReport } from './status-model.js';
import { renderStatus } from './status-render.js';
import { painter } from './table.js';

export const EXIT_DIFFERS = 1;
export const EXIT_UNREADABLE = 3;

export interface Output {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown };
  env: Record<string, string | undefined>;
}

/** The report of this node, read through the plugin's settings. */
export const readStatus = async (config: Config): Promise<{ report: StatusReport; connectMs: number; underlay: Underlay }> => {
  const view = await openReadOnly(config);
  try {
    const snapshot = await readSnapshot({
      ...view,
      vxlanPort: config.vxlanPort,
      ...(config.dnsAddress ? { dnsAddress: config.dnsAddress } : {}),
    });
    return { report: statusReport(snapshot), connectMs: view.connectMs, underlay: view.underlay };
  } finally {
    await view.close();
  }
};

export const runStatus = async (config: Config, opts: { json: boolean }, out: Output): Promise<number> => {
  let report: StatusReport;
  try {
    report = (await readStatus(config)).report;
  } catch (e) {
    out.stderr.write(`tsoverlay status: ${errorText(e)}\n`);
    return EXIT_UNREADABLE;
  }
  out.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : renderStatus(report, painter(out.stdout, out.env)));
  return report.converged ? 0 : EXIT_DIFFERS;
};
