// subscriptions-transport-ws's SubscriptionClient on the legacy `graphql-ws`
// subprotocol, on its own and under Apollo Client's WebSocketLink as older apps use it.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { ApolloClient, InMemoryCache, gql } from '@apollo/client/core/index.js';
import { WebSocketLink } from '@apollo/client/link/ws/index.js';
import subscriptionsTransportWs from 'subscriptions-transport-ws';
import WebSocket from 'ws';

import { Server, graphql, restCreate, waitFor } from './server.js';

const { SubscriptionClient } = subscriptionsTransportWs;

let server;

before(async () => {
  server = await Server.start(['--keep-alive', '200ms']);
});

after(async () => {
  for (const client of clients) client.close();
  await server?.close();
});

const clients = [];

/** A SubscriptionClient, closed after the tests. */
function connect(options = {}) {
  const client = new SubscriptionClient(server.wsUrl, { reconnect: false, ...options }, WebSocket);
  clients.push(client);
  return client;
}

/** Runs a query or mutation and resolves with its one result. */
function once(client, request) {
  return new Promise((resolve, reject) => {
    const results = [];
    client.request(request).subscribe({
      next: (r) => results.push(r),
      error: reject,
      complete: () => resolve(results),
    });
  });
}

test('SubscriptionClient runs queries, mutations and a subscription fed by REST and GraphQL', async () => {
  const client = connect();
  const mutation = await once(client, {
    query: 'mutation($d: JSON!) { createRecord(input: {collection: "legacy", data: $d}) { id version } }',
    variables: { d: { n: 1 } },
  });
  assert.equal(mutation.length, 1);
  assert.equal(mutation[0].data.createRecord.version, 1);
  const query = await once(client, { query: '{ records(collection: "legacy") { totalCount changeCursor } }' });
  assert.equal(query[0].data.records.totalCount, 1);

  const events = [];
  const errors = [];
  const sub = client
    .request({
      query: 'subscription($after: String) { recordChanged(collection: "legacy", after: $after) { kind record { data } } }',
      variables: { after: query[0].data.records.changeCursor },
    })
    .subscribe({ next: (r) => events.push(r), error: (e) => errors.push(e) });
  await restCreate(server, 'legacy', { n: 2 });
  await graphql(server, 'mutation { createRecord(input: {collection: "legacy", data: {n: 3}}) { id } }');
  await waitFor(() => events.length === 2 || errors.length > 0, 'two changes');
  assert.deepEqual(errors, []);
  assert.deepEqual(
    events.map((e) => e.data.recordChanged.record.data.n),
    [2, 3],
  );
  sub.unsubscribe();
  client.close();
});

test('SubscriptionClient reports a refused operation through its error callback', async () => {
  const client = connect();
  const error = await new Promise((resolve) => {
    client.request({ query: 'subscription { recordChanged { nope } }' }).subscribe({
      next: () => resolve(new Error('unexpected result')),
      error: resolve,
    });
  });
  // The client hands over the first of the errors the server sent.
  assert.match(error.message, /Unknown field "nope"/);
  client.close();
});

test('SubscriptionClient stays connected while the server keeps it alive', async () => {
  // The client closes a connection whose `ka` stops for longer than `timeout`.
  const client = connect({ timeout: 1000 });
  let disconnected = false;
  client.onDisconnected(() => (disconnected = true));
  await once(client, { query: '{ __typename }' });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(disconnected, false);
  const again = await once(client, { query: '{ __typename }' });
  assert.deepEqual(again[0].data, { __typename: 'Query' });
  client.close();
});

test("Apollo Client's legacy WebSocketLink subscribes over the same protocol", async () => {
  const subscriptionClient = connect();
  const client = new ApolloClient({ link: new WebSocketLink(subscriptionClient), cache: new InMemoryCache() });
  const page = await client.query({ query: gql`{ records(first: 0) { changeCursor } }`, fetchPolicy: 'network-only' });
  const events = [];
  const sub = client
    .subscribe({
      query: gql`subscription($after: String) { recordChanged(collection: "old-apollo", after: $after) { kind record { id version } } }`,
      variables: { after: page.data.records.changeCursor },
    })
    .subscribe({ next: ({ data }) => events.push(data.recordChanged) });
  const r = await restCreate(server, 'old-apollo', {});
  await fetch(server.api(`/records/${r.id}`), { method: 'DELETE' });
  await waitFor(() => events.length === 2, 'create and delete');
  assert.deepEqual(
    events.map((e) => e.kind),
    ['CREATED', 'DELETED'],
  );
  sub.unsubscribe();
  client.stop();
  subscriptionClient.close();
});
