/**
 * tsoverlay's IPAM driver core: pools and addresses kept in the cluster store,
 * so addresses are unique across every node that shares the store. Docker
 * asks for a pool per address family at network create, then for the gateway,
 * aux addresses and one address per endpoint.
 */
import { poolIdOf } from '../cluster/keys.js';
import { TsoverlayError } from '../errors.js';
import { ADDRESS_SPACES, type AddressKind, type PoolRecord, asPoolId } from '../model.js';
import type { ClusterState } from '../store/cluster-state.js';
import { KeyedLock } from '../util/keyed-lock.js';
import {
  type Cidr,
  type Ip,
  contains,
  containsCidr,
  formatCidr,
  formatIp,
  overlaps,
  parseCidr,
  parseIp,
  size,
  usableRange,
  withPrefix,
} from '../net/ip.js';

export const GATEWAY_REQUEST = 'com.docker.network.gateway';
const MAX_CAS_ATTEMPTS = 10;

export interface IpamConfig {
  node: string;
  /** Range automatic pools are carved from, e.g. 10.128.0.0/9. */
  defaultPool: Cidr;
  /** Prefix length of automatic pools, e.g. 24. */
  defaultPoolSize: number;
}

export interface PoolRequest {
  addressSpace: string;
  pool: string;
  subPool: string;
  options: Record<string, string>;
  v6: boolean;
}

export interface AddressRequest {
  poolId: string;
  address: string;
  options: Record<string, string>;
}

export class Ipam {
  private readonly locks = new KeyedLock();

  constructor(
    private readonly deps: { state: ClusterState; config: IpamConfig; now?: () => Date },
  ) {}

  async requestPool(req: PoolRequest): Promise<{ poolId: string; pool: string }> {
    const space = ADDRESS_SPACES.find((s) => s === req.addressSpace);
    if (!space) {
      throw new TsoverlayError(
        'INVALID_REQUEST',
        `unknown address space "${req.addressSpace}"; tsoverlay serves ${ADDRESS_SPACES.join(' and ')}`,
      );
    }
    const family = req.v6 ? 6 : 4;
    const wanted = req.pool === '' ? undefined : this.parseSubnet(req.pool, family, '--subnet');
    const sub = req.subPool === '' ? undefined : this.parseSubnet(req.subPool, family, '--ip-range');
    if (sub && !wanted) throw new TsoverlayError('INVALID_OPTION', '--ip-range needs --subnet');
    if (sub && wanted && !containsCidr(wanted, sub)) {
      throw new TsoverlayError('INVALID_OPTION', `--ip-range ${formatCidr(sub)} is not inside --subnet ${formatCidr(wanted)}`);
    }
    if (!wanted && family === 6) {
      throw new TsoverlayError('INVALID_OPTION', 'tsoverlay has no default IPv6 pool; give the network an IPv6 --subnet');
    }
    const node = this.deps.config.node;
    return this.locks.run('pools', async () => {
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const { pools, version } = await this.deps.state.listPools();
        const cidr = wanted ?? this.carveDefault(pools);
        if (wanted) {
          const same = pools.find((p) => p.space === space && p.pool === formatCidr(cidr));
          if (same && !same.users.includes(node)) {
            // The same subnet from another node: that node's network, joined.
            const joined = await this.joinPool(same.id, node);
            if (joined) return { poolId: joined.id, pool: joined.pool };
            continue;
          }
          const clash = pools.find((p) => p.space === space && overlaps(parseCidr(p.pool) ?? cidr, cidr));
          if (clash) {
            throw new TsoverlayError(
              'POOL_OVERLAP',
              `subnet ${formatCidr(cidr)} overlaps ${clash.pool}, already used by another tsoverlay network${clash.users.includes(node) ? ' on this node' : ''}; choose a different --subnet`,
            );
          }
        }
        const rec: PoolRecord = {
          id: asPoolId(poolIdOf(space, cidr)),
          space,
          family,
          pool: formatCidr(cidr),
          ...(sub ? { subPool: formatCidr(sub) } : {}),
          requested: wanted !== undefined,
          users: [node],
          options: req.options,
          createdAt: this.now().toISOString(),
        };
        if (await this.deps.state.createPool(rec, version)) return { poolId: rec.id, pool: rec.pool };
      }
      throw new TsoverlayError('STORE_CONFLICT', 'address pools kept changing while choosing one; try again');
    });
  }

  /** This node stops using a pool; the last user's release removes it with its addresses. */
  async releasePool(poolId: string): Promise<void> {
    const node = this.deps.config.node;
    await this.locks.run('pools', async () => {
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const cur = await this.deps.state.getPoolVersioned(poolId);
        if (!cur) return;
        const users = cur.value.users.filter((u) => u !== node);
        if (users.length === 0) {
          await this.deps.state.deletePool(poolId);
          return;
        }
        if (users.length === cur.value.users.length) return;
        if (await this.deps.state.setPool({ ...cur.value, users }, cur.version)) return;
      }
      throw new TsoverlayError('STORE_CONFLICT', `pool ${poolId} kept changing while releasing it; try again`);
    });
  }

  private async joinPool(poolId: string, node: string): Promise<PoolRecord | undefined> {
    const cur = await this.deps.state.getPoolVersioned(poolId);
    if (!cur) return undefined;
    const next = { ...cur.value, users: [...cur.value.users, node] };
    return (await this.deps.state.setPool(next, cur.version)) ? next : undefined;
  }

  /** Returns the address in CIDR form with the pool's prefix. */
  async requestAddress(req: AddressRequest): Promise<string> {
    const pool = await this.deps.state.getPool(req.poolId);
    if (!pool) {
      throw new TsoverlayError('POOL_NOT_FOUND', `address pool ${req.poolId} does not exist; was the network removed?`);
    }
    const cidr = this.parseStored(pool.pool);
    // Docker does not tell aux addresses from `--ip` requests; both are 'endpoint'.
    const kind: AddressKind = req.options['RequestAddressType'] === GATEWAY_REQUEST ? 'gateway' : 'endpoint';
    return this.locks.run(`pool:${pool.id}`, async () => {
      if (req.address !== '') {
        const ip = parseIp(req.address);
        if (!ip || ip.family !== pool.family) {
          throw new TsoverlayError('INVALID_REQUEST', `"${req.address}" is not an IPv${pool.family} address`);
        }
        if (!contains(cidr, ip)) {
          throw new TsoverlayError('ADDRESS_OUT_OF_RANGE', `address ${formatIp(ip)} is not in subnet ${pool.pool}`);
        }
        const text = formatIp(ip);
        if (!(await this.deps.state.claimAddress(pool.id, { ip: text, kind, node: this.deps.config.node }))) {
          const holder = await this.deps.state.getAddress(pool.id, text);
          // A pool joined from another node: its gateway is the network's, shared.
          if (kind === 'gateway' && holder?.kind === 'gateway') return withPrefix(ip, cidr.prefix);
          throw new TsoverlayError(
            'ADDRESS_IN_USE',
            `address ${text} is already in use in ${pool.pool}${holder ? ` (${holder.kind} on ${holder.node})` : ''}`,
          );
        }
        return withPrefix(ip, cidr.prefix);
      }
      // Gateways come from the start of the whole pool (as Docker's own IPAM
      // does); other automatic addresses from --ip-range if given.
      const range = kind === 'gateway' || !pool.subPool ? cidr : this.parseStored(pool.subPool);
      const taken = new Set(await this.deps.state.claimedAddresses(pool.id));
      if (kind === 'gateway') {
        for (const ip of taken) {
          if ((await this.deps.state.getAddress(pool.id, ip))?.kind === 'gateway') return `${ip}/${cidr.prefix}`;
        }
      }
      const { first, last } = usableRange(range);
      for (let v = first; v <= last; v++) {
        const ip: Ip = { family: pool.family, value: v };
        const text = formatIp(ip);
        if (taken.has(text)) continue;
        if (await this.deps.state.claimAddress(pool.id, { ip: text, kind, node: this.deps.config.node })) {
          return withPrefix(ip, cidr.prefix);
        }
        // Someone else (another node) took it meanwhile: keep scanning.
      }
      throw new TsoverlayError(
        'POOL_EXHAUSTED',
        `no free address left in ${pool.subPool ? `--ip-range ${pool.subPool} of ` : ''}${pool.pool}; remove unused containers or use a larger --subnet`,
      );
    });
  }

  async releaseAddress(poolId: string, address: string): Promise<void> {
    const ip = parseIp(address);
    if (!ip) throw new TsoverlayError('INVALID_REQUEST', `"${address}" is not an IP address`);
    const text = formatIp(ip);
    // The gateway belongs to the network on every node that joined the pool;
    // it goes with the pool when the last node releases that.
    if ((await this.deps.state.getAddress(poolId, text))?.kind === 'gateway') return;
    await this.deps.state.releaseAddress(poolId, text);
  }

  private carveDefault(pools: PoolRecord[]): Cidr {
    const { defaultPool, defaultPoolSize } = this.deps.config;
    const used = pools.map((p) => parseCidr(p.pool)).filter((c): c is Cidr => c !== undefined);
    const step = 1n << BigInt(32 - defaultPoolSize);
    const end = defaultPool.network + size(defaultPool);
    for (let net = defaultPool.network; net < end; net += step) {
      const c: Cidr = { family: 4, network: net, prefix: defaultPoolSize };
      if (!used.some((u) => overlaps(u, c))) return c;
    }
    throw new TsoverlayError(
      'POOL_EXHAUSTED',
      `every /${defaultPoolSize} of the default range ${formatCidr(defaultPool)} is in use; give the network a --subnet`,
    );
  }

  private parseSubnet(text: string, family: 4 | 6, flag: string): Cidr {
    const c = parseCidr(text);
    if (!c) throw new TsoverlayError('INVALID_OPTION', `${flag} "${text}" is not a valid CIDR subnet`);
    if (c.family !== family) throw new TsoverlayError('INVALID_OPTION', `${flag} ${text} is not an IPv${family} subnet`);
    return c;
  }

  private parseStored(text: string): Cidr {
    const c = parseCidr(text);
    if (!c) throw new TsoverlayError('INVALID_REQUEST', `stored pool "${text}" is malformed`);
    return c;
  }

  private now(): Date {
    return this.deps.now ? this.deps.now() : new Date();
  }
}
