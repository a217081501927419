/**
 * Host firewall: frames between ports of our bridges must pass.
 *
 * With iptables on, dockerd loads br_netfilter (net.bridge.bridge-nf-call-
 * iptables=1: bridged frames traverse the FORWARD chain) and sets FORWARD's
 * policy to DROP, accepting only its own bridges. Docker's overlay escapes
 * this by keeping its bridge in a namespace of its own; tsoverlay's bridges
 * live in the host namespace, so it accepts bridged traffic within them:
 *
 *   -A FORWARD -i tsbr+ -o tsbr+ -j ACCEPT      (iptables and ip6tables)
 *
 * Frames cannot cross from one tsoverlay bridge to another this way: the
 * bridges have no addresses, so the host never routes between them.
 * This is the one place tsoverlay runs a command (iptables keeps no stable
 * netlink API of its own); a host without iptables needs no rule.
 */
import { execFile } from 'node:child_process';

export interface Firewall {
  /** Ensure the ACCEPT rule exists (idempotent). */
  ensureBridgeForwarding(): Promise<void>;
}

export const BRIDGE_MATCH = 'tsbr+';
const RULE = ['FORWARD', '-i', BRIDGE_MATCH, '-o', BRIDGE_MATCH, '-m', 'comment', '--comment', 'tsoverlay bridges', '-j', 'ACCEPT'];

interface Logger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

const run = (cmd: string, args: string[]): Promise<{ code: number; stderr: string }> =>
  new Promise((resolve) => {
    execFile(cmd, args, { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve({ code: 0, stderr });
      const code = typeof err.code === 'number' ? err.code : -1; // -1: not found / killed
      resolve({ code, stderr: stderr || err.message });
    });
  });

export class IptablesFirewall implements Firewall {
  private missing = new Set<string>();

  constructor(private readonly log?: Logger) {}

  async ensureBridgeForwarding(): Promise<void> {
    const failures: string[] = [];
    for (const cmd of ['iptables', 'ip6tables']) {
      if (this.missing.has(cmd)) continue;
      const check = await run(cmd, ['-w', '5', '-C', ...RULE]);
      if (check.code === 0) continue;
      if (check.code === -1 && /ENOENT/.test(check.stderr)) {
        this.missing.add(cmd);
        this.log?.warn({ cmd }, `${cmd} not found; if the host firewall filters bridged traffic, containers on one tsoverlay network cannot reach each other`);
        continue;
      }
      const add = await run(cmd, ['-w', '5', '-I', ...RULE]);
      if (add.code === 0) this.log?.info({ cmd }, 'firewall rule for tsoverlay bridges added');
      else failures.push(`${cmd}: ${add.stderr.trim()}`);
    }
    if (failures.length > 0) throw new Error(`could not add the firewall rule for tsoverlay bridges: ${failures.join('; ')}`);
  }
}

/** For tests: counts calls, can fail. */
export class FakeFirewall implements Firewall {
  calls = 0;
  fail: Error | undefined;
  async ensureBridgeForwarding(): Promise<void> {
    this.calls++;
    if (this.fail) throw this.fail;
  }
}
