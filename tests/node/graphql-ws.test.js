// The graphql-ws client with retries: the server restarts in the middle of a
// subscription; the client reconnects and, resubscribing from the last cursor it
// received, misses nothing and sees nothing twice.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { Server, graphql, restCreate, waitFor } from './server.js';

let server;

before(async () => {
  server = await Server.start();
});

after(async () => {
  await server?.close();
});

const CHANGED = `
  subscription Changed($after: String) {
    recordChanged(collection: "feed", after: $after) { cursor kind record { data } }
  }
`;

test('graphql-ws reconnects after a server restart and resumes from its last cursor', async () => {
  const head = await graphql(server, '{ records(first: 0) { changeCursor } }');
  const start = head.data.records.changeCursor;

  // Reconnection waits for `reconnect` so the test decides when the client comes back.
  let allowReconnect;
  let reconnect = new Promise((resolve) => (allowReconnect = resolve));
  let connections = 0;
  const client = createClient({
    url: server.wsUrl,
    webSocketImpl: WebSocket,
    retryAttempts: 5,
    retryWait: () => reconnect,
    on: { connected: () => connections++ },
  });

  // The client sends this payload again on every reconnection, so keeping `after` at
  // the last cursor received is how the subscription resumes.
  const payload = { query: CHANGED, variables: { after: start } };
  const received = [];
  const errors = [];
  const dispose = client.subscribe(payload, {
    next: (result) => {
      if (result.errors) errors.push(result.errors);
      const change = result.data?.recordChanged;
      if (change) {
        received.push(change);
        payload.variables.after = change.cursor;
      }
    },
    error: (err) => errors.push(err),
    complete: () => {},
  });

  for (let i = 0; i < 3; i++) await restCreate(server, 'feed', { i });
  await waitFor(() => received.length === 3, 'the first three changes');

  // A crash: no close frame, the socket just drops. Changes are written while the
  // client is away.
  await server.restart('SIGKILL');
  for (let i = 3; i < 6; i++) await restCreate(server, 'feed', { i });
  allowReconnect();
  await waitFor(() => received.length === 6, 'the changes made while away');
  assert.equal(connections, 2, 'one reconnection');

  // And live ones after that.
  for (let i = 6; i < 8; i++) {
    await graphql(server, 'mutation($d: JSON!) { createRecord(input: {collection: "feed", data: $d}) { id } }', { d: { i } });
  }
  await waitFor(() => received.length === 8 || errors.length > 0, 'live changes after the restart');

  // A graceful restart (close code 1001) resumes the same way.
  reconnect = new Promise((resolve) => (allowReconnect = resolve));
  await server.restart('SIGTERM');
  await restCreate(server, 'feed', { i: 8 });
  allowReconnect();
  await waitFor(() => received.length === 9 || errors.length > 0, 'the change made during the second restart');

  dispose();
  await client.dispose();
  assert.deepEqual(errors, []);
  assert.deepEqual(
    received.map((c) => c.record.data.i),
    [0, 1, 2, 3, 4, 5, 6, 7, 8],
    'every change once, in order',
  );
  assert.equal(new Set(received.map((c) => c.cursor)).size, 9);
});

test('graphql-ws runs queries over the socket and reports a refused request as an error', async () => {
  // Not lazy: one connection for both operations, rather than one closing as the
  // next opens.
  const client = createClient({ url: server.wsUrl, webSocketImpl: WebSocket, lazy: false, retryAttempts: 0 });
  const results = [];
  for await (const result of client.iterate({ query: '{ __typename }' })) results.push(result);
  assert.deepEqual(results, [{ data: { __typename: 'Query' } }]);
  await assert.rejects(
    async () => {
      for await (const _ of client.iterate({ query: '{ nope }' })) {
        // no result is expected
      }
    },
    (errors) => Array.isArray(errors) && /nope/.test(errors[0].message),
  );
  await client.dispose();
});
