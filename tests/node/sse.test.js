// The graphql-sse client in its default "distinct connections" mode.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { createClient } from 'graphql-sse';

import { Server, graphql, restCreate, waitFor } from './server.js';

let server;
let client;

before(async () => {
  server = await Server.start();
  client = createClient({ url: server.graphqlUrl, fetchFn: fetch, retryAttempts: 0 });
});

after(async () => {
  client?.dispose();
  await server?.close();
});

/** Every result of an operation (Array.fromAsync arrives only in Node 22). */
async function collect(iterable) {
  const out = [];
  for await (const item of iterable) out.push(item);
  return out;
}

const CHANGED = `
  subscription($after: String) {
    recordChanged(collection: "sse", after: $after) { cursor kind record { data } }
  }
`;

test('graphql-sse runs queries and mutations', async () => {
  const results = await collect(
    client.iterate({ query: 'mutation { createRecord(input: {collection: "sse-q", data: {n: 1}}) { version } }' }),
  );
  assert.deepEqual(results, [{ data: { createRecord: { version: 1 } } }]);
  const [page] = await collect(client.iterate({ query: '{ records(collection: "sse-q") { totalCount } }' }));
  assert.equal(page.data.records.totalCount, 1);
});

test('a graphql-sse subscription receives changes and resumes from its last cursor', async () => {
  const head = await graphql(server, '{ records(first: 0) { changeCursor } }');
  const received = [];
  const stop = client.subscribe(
    { query: CHANGED, variables: { after: head.data.records.changeCursor } },
    { next: (r) => received.push(r.data.recordChanged), error: (e) => received.push(e), complete: () => {} },
  );
  await restCreate(server, 'sse', { n: 1 });
  await graphql(server, 'mutation { createRecord(input: {collection: "sse", data: {n: 2}}) { id } }');
  await waitFor(() => received.length === 2, 'two changes');
  stop();

  // Changes made while no stream is open arrive when it resumes from the last cursor.
  await restCreate(server, 'sse', { n: 3 });
  const resumed = client.iterate({ query: CHANGED, variables: { after: received[1].cursor } });
  const { value } = await resumed.next();
  assert.deepEqual(value.data.recordChanged.record.data, { n: 3 });
  await resumed.return();
  assert.deepEqual(
    received.map((c) => c.record.data.n),
    [1, 2],
  );
});

test('graphql-sse reports validation errors as results', async () => {
  const [result] = await collect(client.iterate({ query: 'subscription { recordChanged { nope } }' }));
  assert.equal(result.data, undefined);
  assert.match(result.errors[0].message, /nope/);
});
