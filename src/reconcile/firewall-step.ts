/**
 * The firewall step of a pass: the host rules tsoverlay needs outside its own
 * devices — bridged traffic accepted in FORWARD, the VXLAN port's member
 * filter, and, with a resolver, its input rules, its source filter (each
 * network's subnet from that network's device only) and the source rule into
 * its reply table. Checked at most every `everyMs` (the check runs iptables: a
 * few processes, ~0.1-0.2 s); the member filter (members and the VTEPs
 * the kernel still forwards to) also as soon as the
 * members change (a node that joins is let in by the pass that sees it), and
 * the resolver's source filter as soon as the networks here change (a new
 * network's containers resolve from the pass that makes it);
 * alongside the pass's kernel work rather than before it; the pass awaits it
 * before its resolver step.
 */
import type { Dataplane } from '../dataplane/dataplane.js';
import type { Firewall } from '../dataplane/firewall.js';
import { errorText } from '../errors.js';
import { RESOLVER_RULE_PRIORITY, RESOLVER_TABLE } from './desired.js';
import type { PassIo, PassState } from './pass-state.js';
import { resolverSources } from './plan.js';

export interface FirewallStepDeps extends PassIo {
  firewall: Firewall;
  everyMs: number;
  /** The node resolver's address, if it runs. */
  dnsAddress?: string;
}

export class FirewallStep {
  /** When the rules were last found (or made) complete; a failed check is retried next pass. */
  private checkedAt = -Infinity;
  /** The member list last written (or found) in the kernel, as JSON. */
  private membersWritten: string | undefined;
  /** VTEPs let in only because the kernel still forwards to them, as last said in the log. */
  private heldSaid = '';
  /** The desired resolver routes the source filter was last written (or found) for, as JSON. */
  private sourcesWritten: string | undefined;
  /** Whether "no network here" was said for the source filter (once, until there is one). */
  private noSourcesSaid = false;

  constructor(private readonly deps: FirewallStepDeps) {}

  /** Start the check if it is due; undefined if not. Never rejects: a failure counts in the pass. */
  start(p: PassState): Promise<void> | undefined {
    const due = Date.now() - this.checkedAt >= this.deps.everyMs;
    const members = p.desired.vxlanMembers;
    const changed = members !== undefined && members.members.length > 0 && JSON.stringify(members) !== this.membersWritten;
    const sourcesChanged = this.deps.dnsAddress !== undefined && p.desired.resolver !== undefined && JSON.stringify(p.desired.resolver.routes) !== this.sourcesWritten;
    if (due) return this.check(p);
    if (!changed && !sourcesChanged) return undefined;
    return Promise.all([changed && this.checkMembers(p), sourcesChanged && this.checkSources(p)]).then(() => undefined);
  }

  private async check(p: PassState): Promise<void> {
    const { firewall, dataplane, dnsAddress, log } = this.deps;
    try {
      await Promise.all([
        firewall.ensureBridgeForwarding(),
        this.checkMembers(p),
        dnsAddress && resolverRules(firewall, dataplane, dnsAddress).then(() => this.checkSources(p)),
      ]);
      this.checkedAt = Date.now();
    } catch (e) {
      p.failed++;
      log.error({ err: e, error: errorText(e) }, 'firewall rule check failed');
    }
  }

  /**
   * The VXLAN member filter, from this pass's read of membership and the
   * kernel's forwarding entries (never rejects; a failure counts). A VTEP
   * this node still forwards to stays let in although membership lacks it
   * (a wiped or adopted store before the peers register again, a peer in
   * its grace): absence is not deletion, and the filter lets a peer go only
   * once its entries are gone.
   */
  private async checkMembers(p: PassState): Promise<void> {
    const members = p.desired.vxlanMembers;
    if (!members || members.members.length === 0) return; // never a DROP without members
    try {
      const held = await forwardedVteps(this.deps.dataplane, members.members[0]!.includes(':'));
      const extra = [...held].filter((a) => !members.members.includes(a)).sort();
      this.reportHeld(extra, members.port);
      await this.deps.firewall.ensureVxlanMembers(members.port, [...members.members, ...extra]);
      this.membersWritten = JSON.stringify(members);
    } catch (e) {
      this.membersWritten = undefined;
      p.failed++;
      this.deps.log.error({ err: e, error: errorText(e), port: members.port }, 'VXLAN member filter could not be written');
    }
  }

  /**
   * The resolver's source filter, from the desired networks and the kept
   * ones whose reply routes are in the kernel (never rejects; a failure
   * counts). No network at all writes nothing: the chain as it was stays
   * (absence is not deletion), and the log says so once.
   */
  private async checkSources(p: PassState): Promise<void> {
    const { firewall, dataplane, dnsAddress, log } = this.deps;
    const want = p.desired.resolver;
    if (!dnsAddress || !want) return;
    try {
      const sources = resolverSources(want, await dataplane.listTableRoutes(RESOLVER_TABLE));
      const written = JSON.stringify(want.routes);
      if (sources.length === 0) {
        if (!this.noSourcesSaid) log.info({ address: dnsAddress }, 'resolver source filter not written: no network here (the chain as it was stays)');
        this.noSourcesSaid = true;
        this.sourcesWritten = written;
        return;
      }
      this.noSourcesSaid = false;
      await firewall.ensureResolverSources(dnsAddress, sources);
      this.sourcesWritten = written;
    } catch (e) {
      this.sourcesWritten = undefined;
      p.failed++;
      log.error({ err: e, error: errorText(e), address: dnsAddress }, 'resolver source filter could not be written');
    }
  }

  /** Say once per change which VTEPs the filter keeps without membership. */
  private reportHeld(extra: readonly string[], port: number): void {
    const said = extra.join(',');
    if (said === this.heldSaid) return;
    this.heldSaid = said;
    if (extra.length > 0) {
      this.deps.log.warn({ port, vteps: extra }, 'VXLAN port still takes packets from VTEPs without membership: this node still forwards to them (absence is not deletion)');
    }
  }
}

/** The remote VTEPs of this address family that the kernel's VXLAN forwarding entries point at. */
const forwardedVteps = async (dataplane: Dataplane, v6: boolean): Promise<Set<string>> => {
  const out = new Set<string>();
  for (const f of (await dataplane.listAllForwarding()).values()) for (const e of f.fdb) if (e.dst.includes(':') === v6) out.add(e.dst);
  return out;
};

/** The resolver's input rule, then the rule that sends its replies to its own table. */
const resolverRules = async (firewall: Firewall, dataplane: Dataplane, address: string): Promise<void> => {
  await firewall.ensureResolverInput(address);
  await dataplane.ensureSourceRule(address, RESOLVER_TABLE, RESOLVER_RULE_PRIORITY);
};
