// REST CRUD with fetch, as AJAX code does it: ETag and If-Match for optimistic
// concurrency, merge patches, paged lists, and polling the change log.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Server } from './server.js';

let server;

before(async () => {
  server = await Server.start();
});

after(async () => {
  await server?.close();
});

const json = { 'content-type': 'application/json' };

test('create, read, replace, merge-patch and delete a record', async () => {
  const created = await fetch(server.api('/records'), {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ collection: 'notes', data: { text: 'hello', tags: ['a'] } }),
  });
  assert.equal(created.status, 201);
  assert.equal(created.headers.get('etag'), '"1"');
  const location = created.headers.get('location');
  const record = await created.json();
  assert.equal(location, `/api/records/${record.id}`);
  assert.deepEqual(Object.keys(record).sort(), ['changeCursor', 'collection', 'createdAt', 'data', 'id', 'updatedAt', 'version']);

  const read = await fetch(new URL(location, server.url));
  assert.equal(read.status, 200);
  assert.deepEqual(await read.json(), record);

  const put = await fetch(new URL(location, server.url), {
    method: 'PUT',
    headers: { ...json, 'if-match': read.headers.get('etag') },
    body: JSON.stringify({ data: { text: 'hello again', tags: ['a'] } }),
  });
  assert.equal(put.status, 200);
  assert.equal(put.headers.get('etag'), '"2"');

  const patch = await fetch(new URL(location, server.url), {
    method: 'PATCH',
    headers: { 'content-type': 'application/merge-patch+json', 'if-match': put.headers.get('etag') },
    body: JSON.stringify({ tags: null, pinned: true }),
  });
  assert.equal(patch.status, 200);
  const patched = await patch.json();
  assert.deepEqual(patched.data, { text: 'hello again', pinned: true });
  assert.equal(patched.version, 3);

  const del = await fetch(new URL(location, server.url), { method: 'DELETE', headers: { 'if-match': '"3"' } });
  assert.equal(del.status, 200);
  // The last state, carrying the delete's change cursor.
  const last = await del.json();
  assert.notEqual(last.changeCursor, patched.changeCursor);
  assert.deepEqual({ ...last, changeCursor: patched.changeCursor }, patched);
  const gone = await fetch(new URL(location, server.url));
  assert.equal(gone.status, 404);
  assert.equal((await gone.json()).error.code, 'NOT_FOUND');
});

test('two tabs editing the same record: the stale write is 412 and changes nothing', async () => {
  const res = await fetch(server.api('/records'), {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ collection: 'notes', data: { text: 'draft' } }),
  });
  const { id } = await res.json();
  const url = server.api(`/records/${id}`);
  const tabA = await fetch(url);
  const tabB = await fetch(url);
  const etagA = tabA.headers.get('etag');
  const etagB = tabB.headers.get('etag');

  const saveA = await fetch(url, {
    method: 'PUT',
    headers: { ...json, 'if-match': etagA },
    body: JSON.stringify({ data: { text: 'from A' } }),
  });
  assert.equal(saveA.status, 200);

  const saveB = await fetch(url, {
    method: 'PUT',
    headers: { ...json, 'if-match': etagB },
    body: JSON.stringify({ data: { text: 'from B' } }),
  });
  assert.equal(saveB.status, 412);
  const conflict = await saveB.json();
  assert.equal(conflict.error.code, 'VERSION_CONFLICT');
  assert.equal(conflict.error.currentVersion, 2);
  assert.equal(saveB.headers.get('etag'), '"2"');
  assert.deepEqual((await (await fetch(url)).json()).data, { text: 'from A' });

  // Tab B reloads, merges and saves with the fresh tag.
  const reload = await fetch(url);
  const retry = await fetch(url, {
    method: 'PATCH',
    headers: { 'content-type': 'application/merge-patch+json', 'if-match': reload.headers.get('etag') },
    body: JSON.stringify({ text: 'from A, then B' }),
  });
  assert.equal(retry.status, 200);
  assert.equal(retry.headers.get('etag'), '"3"');
});

test('lists page with limit and after, and the change log serves polling clients', async () => {
  const start = await (await fetch(server.api('/changes?collection=pages&limit=1'))).json();
  const ids = [];
  for (let i = 0; i < 5; i++) {
    const res = await fetch(server.api('/records'), {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ collection: 'pages', data: { i } }),
    });
    ids.push((await res.json()).id);
  }
  const seen = [];
  let next = null;
  do {
    const url = new URL(server.api('/records'));
    url.searchParams.set('collection', 'pages');
    url.searchParams.set('limit', '2');
    if (next) url.searchParams.set('after', next);
    const page = await (await fetch(url)).json();
    seen.push(...page.items.map((r) => r.id));
    next = page.next;
  } while (next);
  assert.deepEqual(seen, ids);

  // Polling: everything since the cursor of the previous poll.
  const poll = await (await fetch(server.api(`/changes?collection=pages&after=${start.next}`))).json();
  assert.deepEqual(
    poll.items.map((c) => [c.kind, c.record.id]),
    ids.map((id) => ['CREATED', id]),
  );
  const idle = await (await fetch(server.api(`/changes?after=${poll.next}`))).json();
  assert.deepEqual(idle.items, []);
});

test('errors are JSON with the GraphQL codes', async () => {
  const cases = [
    [fetch(server.api('/records/nope')), 400, 'BAD_USER_INPUT'],
    [fetch(server.api('/records'), { method: 'POST', headers: json, body: '{"collection": 1}' }), 400, 'BAD_USER_INPUT'],
    [fetch(server.api('/records'), { method: 'POST', body: 'text' }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    [fetch(server.api('/changes?after=bogus')), 400, 'BAD_USER_INPUT'],
  ];
  for (const [pending, status, code] of cases) {
    const res = await pending;
    assert.equal(res.status, status, res.url);
    assert.equal((await res.json()).error.code, code);
  }
});
