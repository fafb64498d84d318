// Apollo Client, as a React app would set it up without React: HttpLink for queries
// and mutations, GraphQLWsLink (graphql-ws) for subscriptions.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { ApolloClient, HttpLink, InMemoryCache, gql, split } from '@apollo/client/core/index.js';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions/index.js';
import { getMainDefinition } from '@apollo/client/utilities/index.js';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { Server, waitFor } from './server.js';

let server;
let client;
let wsClient;

before(async () => {
  server = await Server.start();
  wsClient = createClient({ url: server.wsUrl, webSocketImpl: WebSocket });
  const link = split(
    ({ query }) => {
      const def = getMainDefinition(query);
      return def.kind === 'OperationDefinition' && def.operation === 'subscription';
    },
    new GraphQLWsLink(wsClient),
    new HttpLink({ uri: server.graphqlUrl, fetch }),
  );
  client = new ApolloClient({ link, cache: new InMemoryCache() });
});

after(async () => {
  client?.stop();
  await wsClient?.dispose();
  await server?.close();
});

const RECORDS = gql`
  query Todos {
    records(collection: "todos") {
      nodes { id data version }
      changeCursor
    }
  }
`;
const CREATE = gql`
  mutation Create($data: JSON!) {
    createRecord(input: { collection: "todos", data: $data }) { id data version }
  }
`;
const PATCH = gql`
  mutation Patch($id: UUID!, $patch: JSON!, $v: Int) {
    patchRecord(id: $id, patch: $patch, expectedVersion: $v) { id data version }
  }
`;
const DELETE = gql`
  mutation Delete($id: UUID!) { deleteRecord(id: $id) { id version } }
`;
const CHANGED = gql`
  subscription Changed($after: String) {
    recordChanged(collection: "todos", after: $after) {
      cursor kind record { id data version }
    }
  }
`;

test('Apollo Client queries, mutates, and receives every change made through GraphQL and REST', async () => {
  // Load, then subscribe from the page's changeCursor: nothing can slip between.
  const page = await client.query({ query: RECORDS, fetchPolicy: 'network-only' });
  assert.deepEqual(page.data.records.nodes, []);
  const events = [];
  const errors = [];
  const sub = client
    .subscribe({ query: CHANGED, variables: { after: page.data.records.changeCursor } })
    .subscribe({ next: ({ data }) => events.push(data.recordChanged), error: (e) => errors.push(e) });

  // Through GraphQL, with Apollo.
  const created = await client.mutate({ mutation: CREATE, variables: { data: { title: 'milk', done: false } } });
  const id = created.data.createRecord.id;
  assert.equal(created.data.createRecord.version, 1);
  const patched = await client.mutate({ mutation: PATCH, variables: { id, patch: { done: true }, v: 1 } });
  assert.deepEqual(patched.data.patchRecord.data, { title: 'milk', done: true });

  // A stale expectedVersion is an error with its code.
  await assert.rejects(
    client.mutate({ mutation: PATCH, variables: { id, patch: { done: false }, v: 1 } }),
    (err) => err.graphQLErrors?.[0]?.extensions?.code === 'VERSION_CONFLICT',
  );

  // Through REST, as other code in the same app might.
  const res = await fetch(server.api('/records'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ collection: 'todos', data: { title: 'bread' } }),
  });
  assert.equal(res.status, 201);
  const bread = await res.json();
  const put = await fetch(server.api(`/records/${bread.id}`), {
    method: 'PUT',
    headers: { 'content-type': 'application/json', 'if-match': res.headers.get('etag') },
    body: JSON.stringify({ data: { title: 'rye bread' } }),
  });
  assert.equal(put.status, 200);
  assert.equal((await fetch(server.api(`/records/${bread.id}`), { method: 'DELETE' })).status, 200);
  await client.mutate({ mutation: DELETE, variables: { id } });

  await waitFor(() => events.length >= 6 || errors.length > 0, 'six changes');
  sub.unsubscribe();
  assert.deepEqual(errors, []);
  assert.deepEqual(
    events.map((e) => [e.kind, e.record.id, e.record.version]),
    [
      ['CREATED', id, 1],
      ['UPDATED', id, 2],
      ['CREATED', bread.id, 1],
      ['UPDATED', bread.id, 2],
      ['DELETED', bread.id, 2],
      ['DELETED', id, 2],
    ],
  );
  assert.deepEqual(events[3].record.data, { title: 'rye bread' });
  const cursors = events.map((e) => e.cursor);
  assert.equal(new Set(cursors).size, cursors.length, 'every event once');

  // And Apollo's own view agrees.
  const after = await client.query({ query: RECORDS, fetchPolicy: 'network-only' });
  assert.deepEqual(after.data.records.nodes, []);
});

test('Apollo Client runs queries and mutations over the WebSocket too', async () => {
  const wsOnly = new ApolloClient({ link: new GraphQLWsLink(wsClient), cache: new InMemoryCache() });
  const created = await wsOnly.mutate({ mutation: CREATE, variables: { data: { via: 'ws' } } });
  const page = await wsOnly.query({ query: RECORDS, fetchPolicy: 'network-only' });
  assert.deepEqual(
    page.data.records.nodes.map((n) => n.id),
    [created.data.createRecord.id],
  );
  wsOnly.stop();
});
