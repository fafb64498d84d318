// The real recordsync binary for the package's tests (the launcher the repository's
// Node suite uses), and small helpers.

import { WebSocket } from 'ws';

export { Server, graphql, waitFor } from '../../../tests/node/server.js';

export { WebSocket };

/** Every change in the server's log, oldest first. */
export async function serverLog(server, collection) {
  const { graphql } = await import('../../../tests/node/server.js');
  const out = [];
  let after = null;
  for (;;) {
    const r = await graphql(
      server,
      'query($a: String, $c: String) { changes(after: $a, collection: $c, first: 500) { nodes { cursor kind record { id version } } changeCursor pageInfo { hasNextPage } } }',
      { a: after, c: collection },
    );
    out.push(...r.data.changes.nodes);
    after = r.data.changes.changeCursor;
    if (!r.data.changes.pageInfo.hasNextPage) return out;
  }
}

/** Every record of `collection` on the server, ordered by creation. */
export async function serverRecords(server, collection) {
  const { graphql } = await import('../../../tests/node/server.js');
  const r = await graphql(
    server,
    'query($c: String) { records(collection: $c, first: 500) { nodes { id collection data version createdAt updatedAt changeCursor } } }',
    { c: collection },
  );
  return r.data.records.nodes;
}

/** Writes `n` records to `collection` over REST, one after another, retrying while the server is down. */
export async function writeMany(server, collection, n, tag) {
  for (let i = 0; i < n; i += 1) {
    for (;;) {
      try {
        const res = await fetch(server.api('/records'), {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': `${collection}-${tag}-${i}` },
          body: JSON.stringify({ collection, data: { tag, i } }),
        });
        if (res.status === 201) break;
        if (res.status < 500) throw new Error(`POST /api/records: ${res.status} ${await res.text()}`);
      } catch (err) {
        if (err.message.startsWith('POST')) throw err;
        // down: try again
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
