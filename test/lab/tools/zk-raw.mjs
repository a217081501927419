#!/usr/bin/env node
// A bare ZooKeeper client for fault injection in integration tests: writes
// what the plugin never would (malformed records), reads and deletes znodes.
// Run inside a lab namespace that reaches ZooKeeper (Lab.zkRaw does).
//
//   node zk-raw.mjs CONNECT create PATH DATA   create (parents too), or set if it exists
//   node zk-raw.mjs CONNECT get PATH           prints the data; exit 3 if absent
//   node zk-raw.mjs CONNECT children PATH      prints one child per line
//   node zk-raw.mjs CONNECT rmr PATH           deletes PATH and everything below
//
// CONNECT is host:port[,host:port...] (no chroot: paths are absolute).
import zookeeper from 'node-zookeeper-client';

const [connect, op, path, data] = process.argv.slice(2);
if (!connect || !op || !path) {
  console.error('usage: zk-raw.mjs CONNECT create|get|children|rmr PATH [DATA]');
  process.exit(2);
}
const client = zookeeper.createClient(connect, { sessionTimeout: 5000, retries: 2 });
const call = (fn, ...args) => new Promise((resolve, reject) => fn.call(client, ...args, (e, ...r) => (e ? reject(e) : resolve(r))));
const timer = setTimeout(() => { console.error('zk-raw: timed out'); process.exit(4); }, 15_000);

const rmr = async (p) => {
  const [kids] = await call(client.getChildren, p);
  for (const k of kids) await rmr(`${p === '/' ? '' : p}/${k}`);
  await call(client.remove, p, -1);
};

client.once('connected', async () => {
  try {
    if (op === 'create') {
      const [stat] = await call(client.exists, path);
      if (stat) await call(client.setData, path, Buffer.from(data ?? ''), -1);
      else await call(client.mkdirp, path, Buffer.from(data ?? ''));
    } else if (op === 'get') {
      const [stat] = await call(client.exists, path);
      if (!stat) process.exitCode = 3;
      else process.stdout.write(String((await call(client.getData, path))[0] ?? ''));
    } else if (op === 'children') {
      for (const k of (await call(client.getChildren, path))[0]) console.log(k);
    } else if (op === 'rmr') {
      const [stat] = await call(client.exists, path);
      if (stat) await rmr(path);
    } else {
      console.error(`zk-raw: unknown op ${op}`);
      process.exitCode = 2;
    }
  } catch (e) {
    console.error(`zk-raw: ${op} ${path}: ${e?.message ?? e}`);
    process.exitCode = 1;
  } finally {
    clearTimeout(timer);
    client.close();
  }
});
client.connect();
