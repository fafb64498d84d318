// Starts the real recordsync binary for a test and stops it again.
//
// The binary is target/debug/recordsync at the repository root (`cargo build` makes
// it), or RECORDSYNC_BIN. Each server gets its own SQLite file in a temporary folder;
// `restart()` starts a new process on the same address and database.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const binary = process.env.RECORDSYNC_BIN ?? path.join(root, 'target', 'debug', 'recordsync');

// The server's start-up line on stderr: "recordsync listening; GraphiQL at http://ADDR/graphql".
const LISTENING = /recordsync listening; GraphiQL at http:\/\/(\S+)\/graphql/;

function launch(listen, dir, args) {
  const databaseUrl = `sqlite://${path.join(dir, 'test.db')}`;
  const child = spawn(
    binary,
    ['serve', '--listen', listen, '--database-url', databaseUrl, ...args],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info' },
    },
  );
  const log = [];
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const addr = new Promise((resolve, reject) => {
    let pending = '';
    child.stderr.setEncoding('utf8');
    // Keep reading stderr for the whole life of the process, or its pipe would fill.
    child.stderr.on('data', (chunk) => {
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        log.push(line);
        if (log.length > 200) log.shift();
        if (process.env.TEST_LOG) process.stderr.write(`[server] ${line}\n`);
        const m = LISTENING.exec(line);
        if (m) resolve(m[1]);
      }
    });
    child.once('error', reject);
    exited.then(({ code, signal }) =>
      reject(new Error(`server exited (${code ?? signal}) before listening:\n${log.join('\n')}`)),
    );
  });
  return { child, addr, exited, log };
}

/** A running server. */
export class Server {
  constructor(dir, args) {
    this.dir = dir;
    this.args = args;
  }

  /** Starts a server with a fresh database; `args` are extra command-line options. */
  static async start(args = []) {
    const dir = mkdtempSync(path.join(tmpdir(), 'recordsync-node-'));
    const server = new Server(dir, args);
    await server.#launch('127.0.0.1:0');
    return server;
  }

  async #launch(listen) {
    this.process = launch(listen, this.dir, this.args);
    this.addr = await this.process.addr;
  }

  get url() {
    return `http://${this.addr}`;
  }

  get graphqlUrl() {
    return `http://${this.addr}/graphql`;
  }

  get wsUrl() {
    return `ws://${this.addr}/graphql`;
  }

  /** `http://ADDR/api{path}`. */
  api(path) {
    return `http://${this.addr}/api${path}`;
  }

  /** Stops the process (SIGTERM: graceful; SIGKILL: a crash) and waits for it. */
  async stop(signal = 'SIGTERM') {
    if (!this.process) return;
    const { child, exited } = this.process;
    this.process = undefined;
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  }

  /** Stops the process with `signal` and starts a new one on the same address and database. */
  async restart(signal = 'SIGTERM') {
    await this.stop(signal);
    await this.#launch(this.addr);
  }

  /** Stops the server and removes its database. */
  async close() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** POSTs a GraphQL request with fetch and returns the parsed response. */
export async function graphql(server, query, variables = {}) {
  const res = await fetch(server.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query, variables }),
  });
  return res.json();
}

/** Creates a record over REST and returns it. */
export async function restCreate(server, collection, data) {
  const res = await fetch(server.api('/records'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ collection, data }),
  });
  if (res.status !== 201) throw new Error(`POST /api/records: ${res.status} ${await res.text()}`);
  return res.json();
}

/** Resolves when `predicate()` holds, checking every 10 ms, or rejects after `ms`. */
export async function waitFor(predicate, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
