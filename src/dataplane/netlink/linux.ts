/**
 * Numbers from the kernel's headers that the netlink adapter's files share
 * (linux/netlink.h, linux/rtnetlink.h, linux/neighbour.h, linux/socket.h).
 */

// nlmsghdr types and flags
export const NLMSG_ERROR = 2;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
export const NLM_F_DUMP = 0x300;

// attributes: nla_type's flag bits (NLA_F_NESTED, NLA_F_NET_BYTEORDER) masked off
export const NLA_TYPE_MASK = 0x3fff;

// rtnetlink message types
export const RTM_NEWLINK = 16;
export const RTM_GETLINK = 18;
export const RTM_NEWNEIGH = 28;
export const RTM_GETNEIGH = 30;

// address families
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_BRIDGE = 7;

// neighbour (and FDB) entries
export const NUD_PERMANENT = 0x80;
export const NTF_SELF = 0x2;
export const NDA_DST = 1;
export const NDA_LLADDR = 2;

// routes
export const RT_TABLE_MAIN = 254;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
export const RT_SCOPE_NOWHERE = 255;

// links: linux/if_link.h
/** IFLA_MACVLAN_MODE value of a macvlan in bridge mode (siblings talk directly). */
export const MACVLAN_MODE_BRIDGE = 4;
/**
 * IFLA_MACVLAN_BC_CUTOFF (s32, Linux 6.5+; older kernels ignore it): set on
 * any macvlan, it applies to every macvlan on the same lower device. The
 * kernel reports it only when it is not its default, 1.
 */
export const IFLA_MACVLAN_BC_CUTOFF = 9;
/**
 * BC_CUTOFF -1: broadcasts and multicasts reach the macvlans at once, as a
 * bridge floods them, instead of through the port's work queue (1,000
 * frames by default), which drops frames under a broadcast burst.
 */
export const MACVLAN_BC_INLINE = -1;
