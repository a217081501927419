/** Applying one action within a pass: counting and how a failure is told. */
import t from 'tap';
import { FakeDataplane } from '../dataplane/fake-dataplane.js';
import type { Log } from '../log.js';
import { runAction } from './apply-action.js';
import { newPassState, stopwatch } from './pass-state.js';

const recordingLog = (): { log: Log; lines: { level: string; msg: string }[] } => {
  const lines: { level: string; msg: string }[] = [];
  const at = (level: string) => (_o: unknown, msg?: string) => void lines.push({ level, msg: msg ?? '' });
  const log = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => log } as unknown as Log;
  return { log, lines };
};

const pass = () => newPassState({ full: false, previous: undefined, desired: { networks: [], endpoints: [], forwarding: new Map() }, observed: undefined, clock: stopwatch() });

t.test('a device removed while the pass ran: counted as failed (the next pass is full) but not logged as an error', async (t) => {
  const { log, lines } = recordingLog();
  const p = pass();
  const ok = await runAction({ dataplane: new FakeDataplane(), log }, p, {
    kind: 'addTableRoute',
    reason: 'resolver reply route',
    route: { dst: '10.9.0.0/24', dev: 'tsbr-001000', src: '10.9.0.254' },
  });
  t.equal(ok, false);
  t.equal(p.failed, 1);
  t.same(lines.map((l) => l.level), ['info']);
  t.match(lines[0]?.msg, /went away during the pass/);
});

t.test('the resolver address on a bridge removed while the pass ran: the same, not an error', async (t) => {
  const { log, lines } = recordingLog();
  const p = pass();
  const ok = await runAction({ dataplane: new FakeDataplane(), log }, p, {
    kind: 'addBridgeAddress',
    reason: 'resolver address missing',
    bridge: 'tsbr-001000',
    address: '169.254.53.53',
  });
  t.equal(ok, false);
  t.equal(p.failed, 1);
  t.same(lines.map((l) => l.level), ['info']);
  t.match(lines[0]?.msg, /went away during the pass/);
});
