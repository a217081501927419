/**
 * What the Docker routes call: the network driver and the IPAM driver. A
 * CoreSlot stands in for them while the plugin is still starting: the socket
 * opens before the store is connected, and until the slot is filled every
 * call that needs state is refused with "cluster store unavailable".
 */
import type { NetworkDriver } from '../driver/network-driver.js';
import type { Ipam } from '../ipam/ipam.js';
import { refusedError } from '../cluster/identity.js';
import { TsoverlayError } from '../errors.js';

export interface Core {
  driver: NetworkDriver;
  ipam: Ipam;
}

const notYet = (): never => {
  throw new TsoverlayError('STORE_UNAVAILABLE', 'cluster store unavailable: tsoverlay is still connecting to it; try again shortly');
};

export class CoreSlot implements Core {
  private core: Core | undefined;
  /** Why calls are refused even with a core (a refused cluster store), if they are. */
  private refusal: () => string | undefined = () => undefined;
  /** Why the store was refused before any core existed (start-up). */
  private startRefusal: string | undefined;

  /** From now on, calls reach this core, unless `refusedBy` names a reason. */
  fill(core: Core, refusedBy?: () => string | undefined): void {
    this.core = core;
    this.startRefusal = undefined;
    if (refusedBy) this.refusal = refusedBy;
  }

  /** The plugin refused its cluster store while starting: calls say why (null: that is over). */
  refuseAtStart(reason: string | null): void {
    this.startRefusal = reason ?? undefined;
  }

  /** Whether calls reach a core yet (`GET /ready`). */
  get filled(): boolean {
    return this.core !== undefined;
  }

  /** Why the plugin is not ready, or undefined when it is (`GET /ready`). */
  notReady(): string | undefined {
    const refused = this.startRefusal ?? (this.core ? this.refusal() : undefined);
    if (refused) return `cluster store refused: ${refused}`;
    return this.core ? undefined : 'tsoverlay is still connecting to its cluster store';
  }

  get driver(): NetworkDriver {
    return this.reach().driver;
  }

  get ipam(): Ipam {
    return this.reach().ipam;
  }

  private reach(): Core {
    const refused = this.startRefusal ?? (this.core ? this.refusal() : undefined);
    if (refused) throw refusedError(refused);
    return this.core ?? notYet();
  }
}
