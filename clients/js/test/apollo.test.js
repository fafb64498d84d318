// The Apollo link against the real binary: queries, mutations, and a subscription that
// sees every change once across a restart.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { ApolloClient, InMemoryCache, gql } from '@apollo/client/core/index.js';

import { createRecordsyncLink, resumable } from '../src/apollo.js';
import { Server, WebSocket, serverLog, waitFor, writeMany } from './helpers.js';

let server;

before(async () => {
  server = await Server.start();
});

after(async () => {
  await server?.close();
});

test('a document without cursor or after is made resumable', async () => {
  const { print } = await import('graphql');
  const { document, afterVariable } = resumable(gql`subscription { recordChanged(collection: "a") { kind } }`);
  assert.equal(afterVariable, '__recordsyncAfter');
  const text = print(document);
  assert.match(text, /subscription \(\$__recordsyncAfter: String\)/);
  assert.match(text, /after: \$__recordsyncAfter/);
  assert.match(text, /cursor/);
});

test('useSubscription-style subscriptions see every change once across a restart', async () => {
  const link = createRecordsyncLink({ url: server.graphqlUrl, webSocketImpl: WebSocket });
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  const created = await client.mutate({
    mutation: gql`mutation($d: JSON!) { createRecord(input: {collection: "apollo", data: $d}) { id version changeCursor } }`,
    variables: { d: { n: 0 } },
  });
  assert.equal(created.data.createRecord.version, 1);
  const read = await client.query({ query: gql`{ records(collection: "apollo") { nodes { id } } }` });
  assert.equal(read.data.records.nodes.length, 1);

  const seen = [];
  const sub = client
    .subscribe({ query: gql`subscription { recordChanged(collection: "apollo") { kind record { id data } } }` })
    .subscribe({ next: ({ data }) => seen.push(data.recordChanged) });
  await new Promise((r) => setTimeout(r, 300));
  await writeMany(server, 'apollo', 3, 'one');
  await waitFor(() => seen.length === 3, 'three');
  await server.restart('SIGKILL');
  await writeMany(server, 'apollo', 3, 'two');
  await waitFor(() => seen.length >= 6, 'six', 30_000);
  await new Promise((r) => setTimeout(r, 300));
  const log = (await serverLog(server, 'apollo')).slice(1);
  assert.deepEqual(seen.map((c) => c.cursor), log.map((c) => c.cursor));
  sub.unsubscribe();
  link.close();
});

test('a mutation whose answer was lost is retried by the link with the same idempotency key', async () => {
  let calls = 0;
  // The first answer is lost after the server has committed the write.
  const lossy = async (url, init) => {
    calls += 1;
    const res = await fetch(url, init);
    if (calls === 1) throw new TypeError('the connection dropped');
    return res;
  };
  const link = createRecordsyncLink({ url: server.graphqlUrl, webSocketImpl: WebSocket, fetch: lossy });
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  const result = await client.mutate({
    mutation: gql`mutation { createRecord(input: {collection: "lossy", data: {n: 1}}) { id version } }`,
  });
  assert.equal(calls, 2);
  assert.equal(result.data.createRecord.version, 1);
  const log = await serverLog(server, 'lossy');
  assert.equal(log.length, 1, 'written once');
  link.close();
});
