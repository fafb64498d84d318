// A client whose answers get lost: a proxy between it and the server cuts the
// connection once the server has answered (the write committed, the answer never
// arrived). The client retries each write with the same idempotency key until an answer
// gets through, as any fetch-based app would; in the end every write is applied once.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';

import { Server, graphql } from './server.js';

let server;
let proxy;
let proxyUrl;
// How many of the next answers the proxy drops.
let dropAnswers = 0;
let dropped = 0;

before(async () => {
  server = await Server.start();
  const [host, port] = server.addr.split(':');
  proxy = net.createServer((client) => {
    const upstream = net.connect(Number(port), host);
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.pipe(upstream);
    upstream.on('data', (chunk) => {
      if (dropAnswers > 0) {
        dropAnswers -= 1;
        dropped += 1;
        client.destroy();
        upstream.destroy();
      } else {
        client.write(chunk);
      }
    });
    upstream.on('end', () => client.end());
    client.on('close', () => upstream.destroy());
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyUrl = `http://127.0.0.1:${proxy.address().port}`;
});

after(async () => {
  proxy?.close();
  await server?.close();
});

/** Sends `init` to `path` through the proxy until an answer arrives; the answer. */
async function retried(path, init) {
  for (let attempt = 0; attempt < 10; attempt += 1) {
    try {
      return await fetch(`${proxyUrl}${path}`, init);
    } catch {
      // The connection was cut: the write may or may not have committed. Retry.
    }
  }
  throw new Error(`no answer to ${path} in 10 attempts`);
}

test('writes whose answers were lost are retried with their keys and applied once', async () => {
  const answers = [];
  for (let n = 0; n < 10; n += 1) {
    dropAnswers = 1;
    const res = await retried('/api/records', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': `create-${n}` },
      body: JSON.stringify({ collection: 'retry', data: { n } }),
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('idempotent-replayed'), 'true', 'the retry got the committed outcome');
    answers.push(await res.json());
  }
  // A GraphQL patch and an atomic batch, their answers lost once too.
  dropAnswers = 1;
  const patch = await retried('/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      query: 'mutation($id: UUID!, $k: String) { patchRecord(id: $id, patch: {done: true}, idempotencyKey: $k) { version changeCursor } }',
      variables: { id: answers[0].id, k: 'patch-0' },
    }),
  });
  assert.equal((await patch.json()).data.patchRecord.version, 2);
  dropAnswers = 1;
  const batch = await retried('/api/batch', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': 'batch-0' },
    body: JSON.stringify({
      writes: [
        { patch: { id: answers[1].id, patch: { done: true }, expectedVersion: 1 } },
        { delete: { id: answers[2].id } },
      ],
    }),
  });
  assert.equal(batch.status, 200);
  const { records } = await batch.json();
  assert.deepEqual(records.map((r) => r.version), [2, 1]);
  assert.equal(dropped, 12, 'every first answer was lost');

  // Each write is in the data and in the change log once.
  const page = await graphql(server, '{ records(collection: "retry", first: 50) { nodes { id version } } }');
  assert.equal(page.data.records.nodes.length, 9);
  const versions = Object.fromEntries(page.data.records.nodes.map((r) => [r.id, r.version]));
  assert.equal(versions[answers[0].id], 2);
  assert.equal(versions[answers[1].id], 2);
  assert.equal(versions[answers[3].id], 1);
  const log = await graphql(server, '{ changes(collection: "retry", first: 100) { nodes { kind } } }');
  assert.equal(log.data.changes.nodes.length, 13, '10 creates, a patch, a patch and a delete');
});
