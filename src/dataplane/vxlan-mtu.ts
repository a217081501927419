/**
 * What VXLAN encapsulation costs, in one place: the bytes it adds per frame
 * and so the largest MTU a network can have over a given underlay. The
 * driver picks a network's MTU with it (options.ts `chooseMtu`), the
 * dataplane refuses a larger one (spec.ts `checkVxlanMtu`).
 */

/** VXLAN encapsulation overhead over an IPv4 underlay (outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14). */
export const VXLAN_OVERHEAD_V4 = 50;
/** Same over an IPv6 underlay (outer IP header 40). */
export const VXLAN_OVERHEAD_V6 = 70;

/** The overhead over an underlay of this family. */
export const vxlanOverhead = (underlayFamily: 4 | 6): number => (underlayFamily === 6 ? VXLAN_OVERHEAD_V6 : VXLAN_OVERHEAD_V4);

/** Largest VXLAN MTU the kernel accepts over an underlay of this MTU and family. */
export const maxVxlanMtu = (underlayMtu: number, family: 4 | 6): number => underlayMtu - vxlanOverhead(family);
