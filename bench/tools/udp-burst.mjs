// usage: node udp-burst.mjs ADDRESS COUNT
// Sends COUNT 64-byte UDP datagrams to ADDRESS:9999 (a broadcast address is
// allowed) as fast as the socket takes them, 256 in flight, and prints
// {"sent":N,"ms":N,"pps":N}. For bench/broadcast.sh.
import dgram from 'node:dgram';

const [address, countText] = process.argv.slice(2);
const count = Number(countText);
if (!address || !Number.isInteger(count) || count < 1) {
  console.error('usage: node udp-burst.mjs ADDRESS COUNT');
  process.exit(2);
}
const socket = dgram.createSocket('udp4');
socket.bind(() => {
  socket.setBroadcast(true);
  const payload = Buffer.alloc(64);
  const t0 = process.hrtime.bigint();
  let sent = 0;
  let inFlight = 0;
  const finish = () => {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    console.log(JSON.stringify({ sent, ms: Math.round(ms), pps: Math.round((sent / ms) * 1000) }));
    socket.close();
  };
  const pump = () => {
    while (sent < count && inFlight < 256) {
      inFlight++;
      sent++;
      socket.send(payload, 9999, address, () => {
        inFlight--;
        if (sent < count) setImmediate(pump);
        else if (inFlight === 0) finish();
      });
    }
  };
  pump();
});
