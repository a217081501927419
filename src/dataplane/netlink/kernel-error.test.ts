import t from 'tap';
import { TsoverlayError } from '../../errors.js';
import { errnoOf, KernelError, kernelFailure, toKernelError } from './kernel-error.js';

t.test('parses the netlink package errors once', async (t) => {
  t.match(toKernelError(new Error('Request rejected: EEXIST')), { name: 'KernelError', errno: 'EEXIST' });
  t.match(toKernelError(new Error('Request rejected: -4242')), { errno: '-4242' }, 'unknown errno numbers are kept');
  t.match(toKernelError(new Error('Timeout has been reached')), { errno: 'ETIMEDOUT' });
  t.match(toKernelError(Object.assign(new Error('send failed'), { code: 'ENOBUFS' })), { errno: 'ENOBUFS' });
  t.match(toKernelError('weird'), { errno: 'EUNKNOWN', message: 'weird' });
  const ke = new KernelError('ENODEV', 'x');
  t.equal(toKernelError(ke), ke, 'idempotent');
});

t.test('maps to TsoverlayError', async (t) => {
  const conflict = kernelFailure('create vxlan', 'tsvx-00002a', new Error('Request rejected: EEXIST'));
  t.ok(conflict instanceof TsoverlayError);
  t.match(conflict, { code: 'KERNEL_CONFLICT', message: 'create vxlan tsvx-00002a: EEXIST' });
  t.equal(errnoOf(conflict), 'EEXIST');
  t.ok(conflict.cause instanceof KernelError);
  t.match(kernelFailure('set link', 'tsbr-00002a', new Error('Request rejected: EBUSY')), { code: 'KERNEL_CONFLICT' });
  t.match(kernelFailure('set link', 'tsbr-00002a', new Error('Request rejected: EINVAL')), {
    code: 'KERNEL_FAILURE',
    message: 'set link tsbr-00002a: EINVAL',
  });
  t.match(kernelFailure('dump', 'links', new Error('Timeout has been reached'), 'no answer within 5000 ms'), {
    code: 'KERNEL_FAILURE',
    message: 'dump links: ETIMEDOUT (no answer within 5000 ms)',
  });
  t.match(kernelFailure('dump', 'links', new Error('Multipart message not terminated properly')), {
    message: 'dump links: Multipart message not terminated properly',
  });
  t.equal(errnoOf(new Error('Request rejected: EEXIST')), undefined, 'only for mapped errors');
});
