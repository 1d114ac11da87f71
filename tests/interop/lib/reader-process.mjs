// Subscribers in a process of their own (started with child_process.fork), so that what they
// receive is not held up by the test's own work: a publisher flooding the relay from the test
// process would otherwise stall these readers on the same event loop, and a stalled reader is,
// to the relay, a slow one.
//
// Messages from the parent: { type: 'start', url, count, subId, filter, expected }, then
// { type: 'report' } and { type: 'stop' }. Messages to it: { type: 'ready' } once every
// subscription has its EOSE; { type: 'done' } once every reader has `expected` events or was
// closed; { type: 'report', received: [[id, ...], ...], closed: [closeInfo | null, ...] }.
import { Client } from './harness.mjs';

let clients = [];
let received = [];
let expected = 0;
let doneSent = false;

function checkDone() {
  if (doneSent) return;
  const over = clients.every((c, i) => received[i].size >= expected || c.closeInfo);
  if (!over) return;
  doneSent = true;
  process.send({ type: 'done' });
}

async function start({ url, count, subId, filter, expected: want }) {
  expected = want;
  clients = await Promise.all(Array.from({ length: count }, () => Client.connect(url)));
  received = clients.map(() => new Set());
  await Promise.all(clients.map((c) => c.req(subId, filter)));
  const prefix = new RegExp(`^\\["EVENT","${subId}",\\{"id":"([0-9a-f]{64})"`);
  clients.forEach((c, i) => {
    // Count deliveries as they come: the client's own listener would parse and queue every
    // message, which costs far more than a real reader of these events.
    c.ws.removeAllListeners('message');
    c.ws.on('message', (data) => {
      const m = prefix.exec(data.toString('latin1', 0, 200));
      if (m) received[i].add(m[1]);
      if (received[i].size >= expected) checkDone();
    });
    c.queue = [];
    c.closed.then(checkDone);
  });
  process.send({ type: 'ready' });
}

process.on('message', async (msg) => {
  if (msg.type === 'start') {
    await start(msg);
  } else if (msg.type === 'report') {
    process.send({
      type: 'report',
      received: received.map((r) => [...r]),
      closed: clients.map((c) => c.closeInfo ?? null),
    });
  } else if (msg.type === 'stop') {
    await Promise.all(clients.map((c) => c.close()));
    process.exit(0);
  }
});
