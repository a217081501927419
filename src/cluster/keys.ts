/**
 * How cluster-wide records are keyed, so every node names the same thing the
 * same way: a pool by its address space and subnet, and a network by the pool
 * of its first subnet (the same subnet created on two nodes is one network).
 *
 * A leaf: it imports only the model and the address arithmetic, so the IPAM
 * (which creates pools) and the driver (which finds a network by its first
 * pool) share the key without importing each other.
 */
import type { AddressSpace } from '../model.js';
import { type Cidr, formatCidr } from '../net/ip.js';

/** Pool ids name the space and the subnet, e.g. "tsoverlay-local:10.20.0.0_24". */
export const poolIdOf = (space: AddressSpace, cidr: Cidr): string => `${space}:${formatCidr(cidr).replace('/', '_')}`;
