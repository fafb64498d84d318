// The graphql-http package's audits of the GraphQL-over-HTTP specification.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { auditServer } from 'graphql-http';

import { Server } from './server.js';

let server;

before(async () => {
  server = await Server.start();
});

after(async () => {
  await server?.close();
});

// The SHOULD and MAY audits that still warn, each with the reason in the README.
const EXPECTED_WARNINGS = [];

test('the server passes every MUST audit of graphql-http', async () => {
  const results = await auditServer({ url: server.graphqlUrl, fetchFn: fetch });
  assert.ok(results.length > 50, `${results.length} audits ran`);
  const failed = results.filter((r) => r.status === 'error');
  assert.deepEqual(
    failed.map((r) => `${r.id} ${r.name}: ${r.reason}`),
    [],
  );
  const warnings = results.filter((r) => r.status === 'warn');
  for (const w of warnings) console.log(`warn ${w.id} ${w.name}: ${w.reason}`);
  assert.deepEqual(
    warnings.map((r) => r.id),
    EXPECTED_WARNINGS,
    'the README lists exactly these warnings',
  );
  console.log(`${results.filter((r) => r.status === 'ok').length} of ${results.length} audits ok`);
});
