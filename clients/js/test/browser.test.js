// The demo and GraphiQL in headless Chromium (Debian's), driven with playwright-core.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

import { Server } from './helpers.js';

const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';

let server;
let browser;

before(async () => {
  server = await Server.start();
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** A page that may only talk to the server; `page.outside` lists what it tried beyond. */
async function serverOnlyPage(context) {
  const page = await context.newPage();
  page.outside = [];
  await page.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.host === server.addr) return route.continue();
    page.outside.push(url.href);
    return route.abort();
  });
  return page;
}

/** A page of `/demo`, live. */
async function demoPage(context) {
  const page = await serverOnlyPage(context);
  await page.goto(`${server.url}/demo`);
  await page.locator('[data-status="live"]').waitFor();
  return page;
}

const item = (page, title) => page.locator('li', { hasText: title });

test('two tabs of /demo stay in sync, also across a server restart', async () => {
  const context = await browser.newContext();
  const a = await demoPage(context);
  const b = await demoPage(context);

  await a.fill('input[name="title"]', 'buy milk');
  await a.press('input[name="title"]', 'Enter');
  await item(b, 'buy milk').waitFor();
  const id = await item(b, 'buy milk').getAttribute('data-id');
  assert.ok(id, 'each todo carries its record id');

  await item(b, 'buy milk').locator('input[type="checkbox"]').check();
  await a.locator(`li[data-id="${id}"] input[type="checkbox"]:checked`).waitFor();

  await server.restart('SIGKILL');
  await a.locator('[data-status="live"]').waitFor({ timeout: 30_000 });
  await b.locator('[data-status="live"]').waitFor({ timeout: 30_000 });
  await b.fill('input[name="title"]', 'after the restart');
  await b.press('input[name="title"]', 'Enter');
  await item(a, 'after the restart').waitFor({ timeout: 30_000 });

  await a.locator(`li[data-id="${id}"] button[name="delete"]`).click();
  await b.locator(`li[data-id="${id}"]`).waitFor({ state: 'detached' });
  assert.equal(await b.locator('li').count(), 1);
  assert.deepEqual([...a.outside, ...b.outside], [], 'nothing loaded from outside the server');
  await context.close();
});

test('GraphiQL renders with every request outside the server blocked', async () => {
  const context = await browser.newContext();
  const page = await serverOnlyPage(context);
  await page.goto(`${server.url}/graphql`);
  await page.locator('.graphiql-container').waitFor({ timeout: 30_000 });
  // The IDE has loaded the schema through its fetcher: the docs know the Query type.
  await page.locator('.graphiql-container .cm-s-graphiql, .graphiql-query-editor').first().waitFor();
  assert.deepEqual(page.outside, []);
  await context.close();
});
