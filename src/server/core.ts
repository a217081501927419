/**
 * What the Docker routes call: the network driver and the IPAM driver. A
 * CoreSlot stands in for them while the plugin is still starting: the socket
 * opens before the store is connected, and until the slot is filled every
 * call that needs state is refused with "cluster store unavailable".
 */
import type { NetworkDriver } from '../driver/network-driver.js';
import type { Ipam } from '../ipam/ipam.js';
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

  /** From now on, calls reach this core. */
  fill(core: Core): void {
    this.core = core;
  }

  /** Whether calls reach a core yet (`GET /ready`). */
  get filled(): boolean {
    return this.core !== undefined;
  }

  get driver(): NetworkDriver {
    return this.core?.driver ?? notYet();
  }

  get ipam(): Ipam {
    return this.core?.ipam ?? notYet();
  }
}
