/** Docker's network and endpoint inputs, checked once. */
import t from 'tap';
import { hostIfName } from '../dataplane/names.js';
import { derivedDeviceNames, endpointAddress, endpointDeviceName, networkSubnets } from './inputs.js';

t.test('network subnets: keyed by their pool in tsoverlay IPAM; other address spaces and wrong families refused', async (t) => {
  t.same(networkSubnets([{ addressSpace: 'tsoverlay-local', pool: '10.20.0.0/24', gateway: '10.20.0.1/24' }], 4), [
    { poolId: 'tsoverlay-local:10.20.0.0_24', pool: '10.20.0.0/24', gateway: '10.20.0.1/24' },
  ]);
  t.same(networkSubnets([{ addressSpace: 'tsoverlay-local', pool: 'fd00:20::/64' }], 6), [{ poolId: 'tsoverlay-local:fd00:20::_64', pool: 'fd00:20::/64' }]);
  t.throws(() => networkSubnets([{ addressSpace: 'LocalDefault', pool: '10.20.0.0/24' }], 4), { code: 'NOT_OURS' });
  t.throws(() => networkSubnets([{ addressSpace: 'tsoverlay-local', pool: 'fd00:20::/64' }], 4), { code: 'INVALID_REQUEST' });
});

t.test('endpoint addresses: none is fine, otherwise CIDR of the right family', async (t) => {
  t.equal(endpointAddress('', 4), undefined);
  t.equal(endpointAddress('10.20.0.5/24', 4), '10.20.0.5/24');
  t.throws(() => endpointAddress('10.20.0.5', 4), { code: 'INVALID_REQUEST' });
  t.throws(() => endpointAddress('10.20.0.5/24', 6), { code: 'INVALID_REQUEST' });
});

t.test('device names: an id too short is refused when creating, and names nothing when deleting', async (t) => {
  const id = 'f80e0567'.padEnd(64, 'a');
  t.equal(endpointDeviceName(hostIfName, id), hostIfName(id));
  t.throws(() => endpointDeviceName(hostIfName, 'abc'), { code: 'INVALID_REQUEST' });
  t.equal(derivedDeviceNames(id).length, 2);
  t.same(derivedDeviceNames('abc'), []);
});
