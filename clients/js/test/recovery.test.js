// Recovering from what a long-lived client meets: a position the log no longer holds, and
// a short-lived token that the server enforces by closing the socket at `exp`.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';

import { createClient } from '../src/index.js';
import { Server, WebSocket, serverLog, serverRecords, waitFor } from './helpers.js';

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function jwt(secret, claims) {
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

async function post(server, collection, data, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(server.api('/records'), { method: 'POST', headers, body: JSON.stringify({ collection, data }) });
  assert.equal(res.status, 201, await res.clone().text());
  return res.json();
}

test('CURSOR_EXPIRED ends a feed, and a collection reloads and goes on', async () => {
  const server = await Server.start(['--change-retention', '1s', '--prune-interval', '1s']);
  try {
    const rs = createClient({ url: server.graphqlUrl, webSocketImpl: WebSocket });
    await post(server, 'old', { n: 0 });
    const stale = (await serverLog(server, 'old'))[0].cursor;
    const todos = rs.collection('todos');
    await todos.ready;
    const statuses = [];
    todos.subscribe(() => statuses.push(todos.getSnapshot().status));
    // While the client cannot reach it, the server takes writes elsewhere and prunes
    // everything the client has not seen.
    const address = server.addr;
    await server.stop('SIGKILL');
    server.addr = '127.0.0.1:0';
    await server.restart();
    for (let n = 0; n < 3; n += 1) await post(server, 'todos', { n });
    await new Promise((r) => setTimeout(r, 2500));
    await server.stop();
    server.addr = address;
    await server.restart();
    const expected = await serverRecords(server, 'todos');
    await waitFor(() => todos.getSnapshot().records.length === 3 && todos.getSnapshot().status === 'live', 'reloaded', 30_000);
    assert.deepEqual(todos.getSnapshot().records, expected);
    assert.ok(statuses.includes('loading'), statuses.join());
    // A feed asked to start at a pruned position ends with the error.
    const err = await new Promise((resolve) => rs.subscribe({ after: stale }, { error: resolve }));
    assert.equal(err.code, 'CURSOR_EXPIRED');
    todos.close();
    rs.close();
  } finally {
    await server.close();
  }
});

test('a short-lived token is renewed at every close at exp, and nothing is lost or repeated', async () => {
  const secret = 'client-test-secret-0123456789';
  const server = await Server.start(['--jwt-secret', secret]);
  try {
    let issued = 0;
    const token = () => {
      issued += 1;
      return jwt(secret, { sub: 'tab', scope: 'read write', exp: Math.floor(Date.now() / 1000) + 2 });
    };
    const rs = createClient({ url: server.graphqlUrl, webSocketImpl: WebSocket, token });
    const got = [];
    const statuses = [];
    const sub = rs.subscribe({ collection: 'exp' }, { next: (c) => got.push(c), status: (s) => statuses.push(s) });
    await waitFor(() => statuses.includes('live'), 'live');
    const writer = jwt(secret, { sub: 'writer', scope: 'read write', exp: Math.floor(Date.now() / 1000) + 600 });
    // Writes for about five seconds: the socket is closed at exp at least twice.
    for (let n = 0; n < 25; n += 1) {
      await post(server, 'exp', { n }, writer);
      await new Promise((r) => setTimeout(r, 200));
    }
    const log = await (async () => {
      const res = await fetch(server.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${writer}` },
        body: JSON.stringify({ query: '{ changes(collection: "exp", first: 100) { nodes { cursor } } }' }),
      });
      return (await res.json()).data.changes.nodes;
    })();
    await waitFor(() => got.length >= log.length, 'every change', 20_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(got.map((c) => c.cursor), log.map((c) => c.cursor));
    assert.ok(issued >= 3, `tokens issued: ${issued}`);
    assert.ok(statuses.filter((s) => s === 'reconnecting').length >= 2, statuses.join());
    sub.unsubscribe();
    rs.close();
  } finally {
    await server.close();
  }
});

test('a token function that throws ends a feed with its error', async () => {
  const server = await Server.start(['--jwt-secret', 'throwing-secret-0123456789']);
  try {
    const failure = new Error('signed out');
    const rs = createClient({
      url: server.graphqlUrl,
      webSocketImpl: WebSocket,
      token: () => {
        throw failure;
      },
    });
    const err = await new Promise((resolve) => rs.subscribe({ collection: 'x', after: 'AAAAAAAAAAAAAAAAAAAAAA' }, { error: resolve }));
    assert.equal(err, failure);
    rs.close();
  } finally {
    await server.close();
  }
});
