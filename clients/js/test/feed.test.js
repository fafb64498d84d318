// Feeds and collections across server restarts, against the real binary.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { RecordsyncError, createClient } from '../src/index.js';
import { Server, WebSocket, serverLog, serverRecords, waitFor, writeMany } from './helpers.js';

let server;

before(async () => {
  server = await Server.start();
});

after(async () => {
  await server?.close();
});

for (const signal of ['SIGKILL', 'SIGTERM']) {
  test(`a feed delivers the log exactly once across a ${signal} restart while another client writes`, async () => {
    const collection = `feed-${signal}`;
    const rs = createClient({ url: server.graphqlUrl, webSocketImpl: WebSocket });
    const got = [];
    const statuses = [];
    const sub = rs.subscribe({ collection }, { next: (c) => got.push(c), status: (s) => statuses.push(s) });
    await waitFor(() => statuses.includes('live'), 'live');
    await writeMany(server, collection, 10, 'before');
    await waitFor(() => got.length === 10, 'ten changes');
    // The server goes down mid-stream; writes land right after it is back, before the
    // client's back-off has ended.
    await server.restart(signal);
    await writeMany(server, collection, 10, 'after');
    await waitFor(() => got.length >= 20, 'twenty changes', 30_000);
    await new Promise((r) => setTimeout(r, 300));
    const log = await serverLog(server, collection);
    assert.deepEqual(got.map((c) => c.cursor), log.map((c) => c.cursor));
    assert.equal(sub.cursor, log.at(-1).cursor);
    assert.ok(statuses.includes('reconnecting'), statuses.join());
    sub.unsubscribe();
    rs.close();
  });
}

test('a collection keeps its snapshot equal to the server across restarts', async () => {
  const rs = createClient({ url: server.graphqlUrl, webSocketImpl: WebSocket });
  await writeMany(server, 'todos', 5, 'seed');
  const todos = rs.collection('todos');
  await todos.ready;
  assert.equal(todos.getSnapshot().status, 'live');
  assert.equal(todos.getSnapshot(), todos.getSnapshot(), 'the same object until something changes');
  let calls = 0;
  const off = todos.subscribe(() => {
    calls += 1;
  });
  await writeMany(server, 'todos', 3, 'live');
  await server.restart('SIGKILL');
  await writeMany(server, 'todos', 3, 'back');
  const expected = await serverRecords(server, 'todos');
  await waitFor(() => todos.getSnapshot().records.length === expected.length && todos.getSnapshot().status === 'live', 'caught up', 30_000);
  assert.deepEqual(todos.getSnapshot().records, expected);
  assert.ok(calls > 0);
  off();
  todos.close();
  rs.close();
});

test('writes are optimistic, confirmed by their answer, and rolled back on refusal', async () => {
  const rs = createClient({ url: server.graphqlUrl, webSocketImpl: WebSocket });
  const notes = rs.collection('notes');
  await notes.ready;
  const creating = notes.create({ text: 'hi' });
  assert.equal(notes.getSnapshot().pending, 1);
  assert.equal(notes.getSnapshot().records[0].data.text, 'hi', 'shown at once');
  const created = await creating;
  assert.equal(created.version, 1);
  assert.equal(notes.getSnapshot().pending, 0);
  await notes.patch(created.id, { text: 'there' }, { expectedVersion: 1 });
  // A stale version: rolled back, rejected with the record as it is now.
  const stale = notes.update(created.id, { text: 'mine' }, { expectedVersion: 1 });
  assert.equal(notes.getSnapshot().records[0].data.text, 'mine');
  const err = await stale.catch((e) => e);
  assert.ok(err instanceof RecordsyncError);
  assert.equal(err.code, 'VERSION_CONFLICT');
  assert.equal(err.current.version, 2);
  assert.equal(err.current.data.text, 'there');
  assert.equal(notes.getSnapshot().records[0].data.text, 'there', 'rolled back');
  await notes.delete(created.id);
  assert.equal(notes.getSnapshot().records.length, 0);
  notes.close();
  rs.close();
});

test('writes queued while the server is down are each written once when it is back', async () => {
  const rs = createClient({ url: server.graphqlUrl, webSocketImpl: WebSocket, maxQueuedWrites: 5 });
  const queued = rs.collection('queued');
  await queued.ready;
  await server.stop('SIGKILL');
  const writes = [1, 2, 3, 4, 5].map((n) => queued.create({ n }));
  const overflow = await queued.create({ n: 6 }).catch((e) => e);
  assert.equal(overflow.code, 'QUEUE_FULL');
  assert.equal(queued.getSnapshot().pending, 5);
  await server.restart();
  const done = await Promise.all(writes);
  assert.deepEqual(done.map((r) => r.data.n), [1, 2, 3, 4, 5]);
  const records = await serverRecords(server, 'queued');
  assert.deepEqual(records.map((r) => r.data.n), [1, 2, 3, 4, 5]);
  await waitFor(() => queued.getSnapshot().pending === 0 && queued.getSnapshot().records.length === 5, 'confirmed');
  queued.close();
  rs.close();
});

test('commitWrites applies a batch atomically', async () => {
  const rs = createClient({ url: server.graphqlUrl, webSocketImpl: WebSocket });
  const id = crypto.randomUUID();
  const batch = await rs.commitWrites([
    { create: { id, collection: 'forms', data: { a: 1 } } },
    { patch: { id, patch: { b: 2 } } },
  ]);
  assert.deepEqual(batch.records.map((r) => r.version), [1, 2]);
  assert.equal(batch.changeCursor, batch.records[1].changeCursor);
  const refused = await rs.commitWrites([
    { create: { collection: 'forms', data: {} } },
    { delete: { id, expectedVersion: 1 } },
  ]).catch((e) => e);
  assert.equal(refused.code, 'VERSION_CONFLICT');
  assert.equal(refused.index, 1);
  assert.equal((await serverRecords(server, 'forms')).length, 1);
  rs.close();
});
