#!/usr/bin/env node
// DNS helper for the lab (plain ESM, so that the harness can run it with the
// bare `node` binary inside any network namespace: `nsenter ... node dns-tool.mjs`).
// Everything it sends stays inside the lab: it only talks to the addresses it
// is given.
//
//   serve --listen IP:PORT [--record NAME=IPV4 ...]
//       A tiny authoritative server (UDP and TCP): A records for the given
//       names, NOERROR/no data for other types of those names, NXDOMAIN for
//       everything else. Prints `listening IP:PORT` once bound, then one line
//       per query: `query <udp|tcp> <src> <name> <type> -> <rcode>`.
//
//   query --server IP[:PORT] --name NAME [--type A] [--timeout MS] [--tcp]
//       One query; prints one JSON line (DnsQueryResult in dns.ts). With
//       --type PTR an IPv4 NAME is turned into its in-addr.arpa name.
//
//   poll --server IP[:PORT] --name NAME [--type A] [--interval MS] [--deadline MS] [--until answer|gone]
//       Sends a query every --interval ms (not waiting for replies) until a
//       reply satisfies --until (answer: NOERROR with at least one record;
//       gone: anything else) or --deadline passes. Prints a JSON line
//       {"event":"ready","at":...} when the socket is up, then
//       {"event":"done","ok":...,"at":<epoch ms of the satisfying reply>,...}.
//
//   raw --server IP[:PORT] --hex HEX [--hex HEX ...] [--timeout MS] [--tcp]
//       Sends the bytes as they are (TCP: as they are, no length prefix added)
//       and prints {"reply":HEX|null,...} with the first reply (or what came
//       back on the TCP connection) within the timeout. Several --hex: all at
//       once, each from its own socket/connection, one line each, in order.
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';

const argv = process.argv.slice(2);
const mode = argv.shift();
const opts = { record: [] };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (!a.startsWith('--')) fail(`unexpected argument ${a}`);
  const key = a.slice(2);
  if (key === 'tcp') { opts.tcp = true; continue; }
  const v = argv[++i];
  if (v === undefined) fail(`${a} needs a value`);
  if (key === 'record') opts.record.push(v);
  else if (key === 'hex') (opts.hexes ??= []).push(v);
  else opts[key] = v;
}

function fail(msg) {
  process.stderr.write(`dns-tool: ${msg}\n`);
  process.exit(2);
}

function hostPort(text, defPort) {
  const m = /^\[(.+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (m) return { host: m[1], port: Number(m[2]) };
  return { host: text.replace(/^\[|\]$/g, ''), port: defPort };
}

const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE'];
const rcodeName = (n) => RCODES[n] ?? `RCODE${n}`;
const norm = (name) => String(name).toLowerCase().replace(/\.$/, '');

function qname(name, type) {
  if (type === 'PTR' && /^\d+\.\d+\.\d+\.\d+$/.test(name)) return `${name.split('.').reverse().join('.')}.in-addr.arpa`;
  return name;
}

/** Header fields of any reply, even one dns-packet cannot decode. */
function header(buf) {
  if (buf.length < 12) return undefined;
  const flags = buf.readUInt16BE(2);
  return {
    id: buf.readUInt16BE(0),
    qr: (flags >> 15) & 1,
    opcode: (flags >> 11) & 0xf,
    tc: (flags >> 9) & 1,
    rcode: rcodeName(flags & 0xf),
    qdcount: buf.readUInt16BE(4),
    ancount: buf.readUInt16BE(6),
  };
}

function describe(buf) {
  const h = header(buf);
  const out = { bytes: buf.length, header: h ?? null, rcode: h?.rcode ?? null, answers: [] };
  try {
    const p = dnsPacket.decode(buf);
    out.answers = (p.answers ?? []).map((a) => ({ type: a.type, name: a.name, data: typeof a.data === 'string' ? a.data : JSON.stringify(a.data) }));
  } catch (e) {
    out.decodeError = String(e?.message ?? e);
  }
  return out;
}

function encodeQuery(id, name, type) {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name: qname(name, type), class: 'IN' }] });
}

function print(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

// ------------------------------------------------------------------ serve

function serve() {
  if (!opts.listen) fail('serve needs --listen IP:PORT');
  const { host, port } = hostPort(opts.listen, 53);
  const records = new Map();
  for (const r of opts.record) {
    const [name, ip] = r.split('=');
    if (!name || !ip) fail(`bad --record ${r}`);
    records.set(norm(name), ip);
  }
  const answer = (msg, proto, src) => {
    let q;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      print_line(`query ${proto} ${src} (undecodable ${msg.length} bytes) -> dropped`);
      return undefined;
    }
    if (q.type !== 'query') return undefined;
    const question = q.questions?.[0];
    const name = question ? norm(question.name) : '';
    const ip = records.get(name);
    let rcode = 0;
    const answers = [];
    if (!question) rcode = 1;
    else if (ip === undefined) rcode = 3;
    else if (question.type === 'A') answers.push({ type: 'A', name: question.name, class: 'IN', ttl: 30, data: ip });
    print_line(`query ${proto} ${src} ${name || '-'} ${question?.type ?? '-'} -> ${rcodeName(rcode)}`);
    return dnsPacket.encode({
      type: 'response', id: q.id,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_AVAILABLE | (q.flags & dnsPacket.RECURSION_DESIRED) | rcode,
      questions: q.questions, answers,
    });
  };
  const udp = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  udp.on('message', (msg, rinfo) => {
    const reply = answer(msg, 'udp', `${rinfo.address}:${rinfo.port}`);
    if (reply) udp.send(reply, rinfo.port, rinfo.address);
  });
  udp.on('error', (e) => { process.stderr.write(`dns-tool serve: udp: ${e.message}\n`); process.exit(1); });
  const tcp = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.setTimeout(10_000, () => sock.destroy());
    sock.on('error', () => undefined);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const len = buf.readUInt16BE(0);
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        const reply = answer(msg, 'tcp', `${sock.remoteAddress}:${sock.remotePort}`);
        if (reply) {
          const pre = Buffer.alloc(2);
          pre.writeUInt16BE(reply.length);
          sock.write(Buffer.concat([pre, reply]));
        }
      }
    });
  });
  tcp.on('error', (e) => { process.stderr.write(`dns-tool serve: tcp: ${e.message}\n`); process.exit(1); });
  let up = 0;
  const ready = () => { if (++up === 2) print_line(`listening ${host}:${port}`); };
  udp.bind(port, host, ready);
  tcp.listen({ host, port }, ready);
  const stop = () => { udp.close(); tcp.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function print_line(s) {
  process.stdout.write(`${new Date().toISOString()} ${s}\n`);
}

// ------------------------------------------------------------- udp/tcp I/O

/** Send `payload` over TCP (a DNS message gets its length prefix unless raw); resolve with what came back. */
function tcpExchange(server, payload, timeoutMs, { raw = false, oneMessage = true } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock = net.connect({ host: server.host, port: server.port });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (res) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ ...res, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => finish({ error: 'timeout', data: buf }), timeoutMs);
    sock.on('connect', () => {
      if (raw) sock.write(payload);
      else {
        const pre = Buffer.alloc(2);
        pre.writeUInt16BE(payload.length);
        sock.write(Buffer.concat([pre, payload]));
      }
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (oneMessage && buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) finish({ data: buf });
    });
    sock.on('error', (e) => finish({ error: e.code ?? e.message, data: buf }));
    sock.on('close', () => finish({ error: buf.length ? undefined : 'closed', data: buf }));
  });
}

function udpExchange(server, payload, timeoutMs, id) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock = dgram.createSocket(server.host.includes(':') ? 'udp6' : 'udp4');
    let done = false;
    const finish = (res) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try { sock.close(); } catch { /* closed */ }
      resolve({ ...res, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => finish({ error: 'timeout' }), timeoutMs);
    sock.on('message', (msg) => {
      if (id !== undefined && (msg.length < 2 || msg.readUInt16BE(0) !== id)) return; // not ours
      finish({ data: msg });
    });
    sock.on('error', (e) => finish({ error: e.code ?? e.message }));
    sock.send(payload, server.port, server.host, (e) => { if (e) finish({ error: e.code ?? e.message }); });
  });
}

async function query() {
  if (!opts.server || !opts.name) fail('query needs --server and --name');
  const server = hostPort(opts.server, 53);
  const type = (opts.type ?? 'A').toUpperCase();
  const timeoutMs = Number(opts.timeout ?? 2000);
  const id = Math.floor(Math.random() * 65536);
  const msg = encodeQuery(id, opts.name, type);
  const r = opts.tcp ? await tcpExchange(server, msg, timeoutMs) : await udpExchange(server, msg, timeoutMs, id);
  const base = { server: `${server.host}:${server.port}`, proto: opts.tcp ? 'tcp' : 'udp', name: qname(opts.name, type), type, ms: r.ms };
  if (!r.data || r.data.length === 0) return print({ ...base, ok: false, error: r.error ?? 'no reply', rcode: null, answers: [] });
  const body = opts.tcp ? r.data.subarray(2) : r.data;
  const d = describe(body);
  print({ ...base, ok: true, rcode: d.rcode, answers: d.answers, ...(d.decodeError ? { decodeError: d.decodeError } : {}) });
}

async function poll() {
  if (!opts.server || !opts.name) fail('poll needs --server and --name');
  const server = hostPort(opts.server, 53);
  const type = (opts.type ?? 'A').toUpperCase();
  const intervalMs = Number(opts.interval ?? 5);
  const deadlineMs = Number(opts.deadline ?? 20_000);
  const until = opts.until ?? 'answer';
  const sock = dgram.createSocket(server.host.includes(':') ? 'udp6' : 'udp4');
  let sent = 0;
  let replies = 0;
  let last;
  let nextId = Math.floor(Math.random() * 65536);
  const t0 = Date.now();
  let timer;
  let deadline;
  let finished = false;
  const finish = (res) => {
    if (finished) return;
    finished = true;
    clearInterval(timer);
    clearTimeout(deadline);
    try { sock.close(); } catch { /* closed */ }
    print({ event: 'done', name: opts.name, type, sent, replies, last: last ?? null, elapsedMs: Date.now() - t0, ...res });
  };
  sock.on('message', (msg) => {
    const at = Date.now();
    replies++;
    const d = describe(msg);
    last = { rcode: d.rcode, answers: d.answers };
    const answered = d.rcode === 'NOERROR' && d.answers.length > 0;
    if ((until === 'answer') === answered) finish({ ok: true, at });
  });
  sock.on('error', (e) => finish({ ok: false, error: e.code ?? e.message }));
  sock.bind(0, () => {
    print({ event: 'ready', at: Date.now() });
    const send = () => {
      nextId = (nextId + 1) & 0xffff;
      sent++;
      sock.send(encodeQuery(nextId, opts.name, type), server.port, server.host, () => undefined);
    };
    send();
    timer = setInterval(send, intervalMs);
    deadline = setTimeout(() => finish({ ok: false, error: 'deadline' }), deadlineMs);
  });
}

async function raw() {
  if (!opts.server || !opts.hexes) fail('raw needs --server and --hex');
  const server = hostPort(opts.server, 53);
  const timeoutMs = Number(opts.timeout ?? 1000);
  const results = await Promise.all(opts.hexes.map((hex) => rawOne(server, Buffer.from(hex, 'hex'), timeoutMs)));
  for (const r of results) print(r);
}

async function rawOne(server, payload, timeoutMs) {
  const r = opts.tcp
    ? await tcpExchange(server, payload, timeoutMs, { raw: true })
    : await udpExchange(server, payload, timeoutMs, undefined);
  const data = r.data && r.data.length ? r.data : undefined;
  let d;
  if (data) d = describe(opts.tcp && data.length >= 2 ? data.subarray(2) : data);
  return {
    server: `${server.host}:${server.port}`, proto: opts.tcp ? 'tcp' : 'udp', sentBytes: payload.length, ms: r.ms,
    reply: data ? data.toString('hex') : null, error: r.error ?? null,
    rcode: d?.rcode ?? null, header: d?.header ?? null,
  };
}

if (mode === 'serve') serve();
else if (mode === 'query') await query();
else if (mode === 'poll') await poll();
else if (mode === 'raw') await raw();
else fail(`unknown mode ${mode}; use serve, query, poll or raw`);
