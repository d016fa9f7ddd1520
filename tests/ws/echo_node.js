// A real WebSocket client (Debian node-ws) against ringport-echo --ws-port:
// echo of many sizes (1 B .. 60 KiB, one ringport frame per binary
// message), 64 messages in flight at once, a fragmented message, two
// frames in one message, ping with a payload, and the close handshake.
// Usage: NODE_PATH=/usr/share/nodejs node echo_node.js PORT
// Exits 0 and prints "ok", or prints what went wrong and exits 1.
'use strict';
const WebSocket = require('ws');

const port = process.argv[2];
const fail = (why) => { console.log('node ws client: ' + why); process.exit(1); };
setTimeout(() => fail('timed out'), 12000).unref();

function frame(n, type) {
  const b = Buffer.alloc(4 + n);
  b.writeUInt16LE(n, 0);
  b.writeUInt16LE(type, 2);
  for (let i = 0; i < n; i++) b[4 + i] = (i * 31 + n + type) & 255;
  return b;
}

const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
const expected = [];
let step = 0;
const steps = [];

function expect(buf, then) { expected.push({ buf, then }); }

ws.on('message', (data, isBinary) => {
  if (!isBinary) fail('text message from the server');
  const want = expected.shift();
  if (!want) fail('unexpected message');
  if (!Buffer.from(data).equals(want.buf))
    fail(`message of ${data.length} bytes differs (wanted ${want.buf.length})`);
  if (want.then) want.then();
});
ws.on('error', (e) => fail('error: ' + e.message));

// 1. Sizes: one at a time.
const sizes = [0, 1, 2, 121, 122, 123, 125, 126, 1000, 4096, 16384, 60000, 61440];
steps.push(() => {
  let i = 0;
  const next = () => {
    if (i === sizes.length) return run();
    const f = frame(sizes[i++], 7);
    expect(f, next);
    ws.send(f);
  };
  next();
});
// 2. 64 in flight.
steps.push(() => {
  for (let i = 0; i < 64; i++) {
    const f = frame((i * 97) % 3000, 8);
    expect(f, i === 63 ? run : null);
    ws.send(f);
  }
});
// 3. A fragmented message (one frame in three fragments) and two frames
// in one message (two messages back).
steps.push(() => {
  const f = frame(5000, 9);
  expect(f, null);
  ws.send(f.subarray(0, 3), { fin: false });
  ws.send(f.subarray(3, 2000), { fin: false });
  ws.send(f.subarray(2000), { fin: true });
  const a = frame(10, 10), b = frame(20, 11);
  expect(a, null);
  expect(b, run);
  ws.send(Buffer.concat([a, b]));
});
// 4. Ping with a payload: the pong carries it back.
steps.push(() => {
  const p = Buffer.from('ringport-ping-0123456789');
  ws.once('pong', (d) => {
    if (!Buffer.from(d).equals(p)) fail('pong payload differs');
    run();
  });
  ws.ping(p);
});
// 5. The close handshake: our code comes back.
steps.push(() => {
  ws.once('close', (code) => {
    if (code !== 1000) fail('closed with ' + code);
    console.log('ok');
    process.exit(0);
  });
  ws.close(1000, 'bye');
});

function run() { steps[step++](); }
ws.on('open', run);
