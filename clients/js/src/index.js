// recordsync-client: the client half of recordsync's guarantee.
//
// - `rs.subscribe(...)`: an exactly-once feed of changes. It re-subscribes with `after`
//   set to its last delivered cursor on every reconnect, so nothing is lost or repeated
//   however often the connection drops.
// - `rs.collection(...)`: a live snapshot of a collection, loaded at one change-log
//   position and kept equal to the server's records by the feed after it.
// - Writes are optimistic, carry idempotency keys (so a retry after a lost answer is
//   safe), and wait in a bounded queue while the server is unreachable.
//
// The protocol is graphql-ws (`graphql-transport-ws`), with its keep-alive and
// reconnection; this module only adds the cursor bookkeeping on top.

import { createClient as createWsClient } from 'graphql-ws';

/** An error with the server's `extensions.code`. */
export class RecordsyncError extends Error {
  constructor(code, message, extensions = {}) {
    super(message);
    this.name = 'RecordsyncError';
    this.code = code;
    if (extensions.current !== undefined) this.current = extensions.current;
    if (extensions.currentVersion !== undefined) this.currentVersion = extensions.currentVersion;
    if (extensions.index !== undefined) this.index = extensions.index;
  }
}

const RECORD_FIELDS = 'id collection data version createdAt updatedAt changeCursor';
const CHANGE_FIELDS = `cursor kind changedAt record { ${RECORD_FIELDS} }`;
const FEED = `subscription RecordsyncFeed($collection: String, $id: UUID, $kinds: [ChangeKind!], $after: String) {
  recordChanged(collection: $collection, id: $id, kinds: $kinds, after: $after) { ${CHANGE_FIELDS} }
}`;
const HEAD = '{ records(first: 0) { changeCursor } }';
const PAGE = `query RecordsyncPage($collection: String, $filter: RecordFilter, $orderBy: RecordOrder, $after: String) {
  records(collection: $collection, filter: $filter, orderBy: $orderBy, first: 500, after: $after) {
    nodes { ${RECORD_FIELDS} } pageInfo { hasNextPage endCursor } changeCursor
  }
}`;
const MUTATIONS = {
  create: `mutation($input: CreateRecordInput!, $key: String) { result: createRecord(input: $input, idempotencyKey: $key) { ${RECORD_FIELDS} } }`,
  update: `mutation($id: UUID!, $data: JSON!, $v: Int, $key: String) { result: updateRecord(id: $id, data: $data, expectedVersion: $v, idempotencyKey: $key) { ${RECORD_FIELDS} } }`,
  patch: `mutation($id: UUID!, $patch: JSON!, $v: Int, $key: String) { result: patchRecord(id: $id, patch: $patch, expectedVersion: $v, idempotencyKey: $key) { ${RECORD_FIELDS} } }`,
  delete: `mutation($id: UUID!, $v: Int, $key: String) { result: deleteRecord(id: $id, expectedVersion: $v, idempotencyKey: $key) { ${RECORD_FIELDS} } }`,
  batch: `mutation($writes: [WriteInput!]!, $key: String) { result: commitWrites(writes: $writes, idempotencyKey: $key) { records { ${RECORD_FIELDS} } changeCursor } }`,
};

/** Codes after which a request is worth sending again (nothing was decided). */
const RETRYABLE = new Set(['NETWORK_ERROR', 'SERVICE_UNAVAILABLE']);

/** A new random id (idempotency keys, record ids). */
export function randomId() {
  return globalThis.crypto.randomUUID();
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The graphql-ws client both the client and the Apollo link use: one socket for its
 * owner's life (a lazy one closes when its last subscription ends, and graphql-ws then
 * rejects a promise nobody awaits), keep-alive, and reconnection with jittered back-off
 * for as long as `shouldRetry()` says. `token()` is asked on every (re)connect.
 */
export function createSocket({ url, webSocketImpl, token, shouldRetry, on }) {
  return createWsClient({
    url: webSocketUrl(url),
    webSocketImpl,
    lazy: false,
    onNonLazyError: () => {},
    keepAlive: 10_000,
    retryAttempts: Infinity,
    retryWait: async (retries) => sleep(Math.min(5_000, 250 * 2 ** Math.min(retries, 5)) * (0.5 + Math.random() / 2)),
    shouldRetry,
    connectionParams: async () => {
      const t = await token();
      return t ? { Authorization: `Bearer ${t}` } : {};
    },
    on,
  });
}

/** The WebSocket URL of a GraphQL HTTP URL. */
export function webSocketUrl(url) {
  const u = new URL(url, globalThis.location?.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}

/** The error of a GraphQL answer's first error. */
function errorOf(errors) {
  const first = errors[0] ?? {};
  const ext = first.extensions ?? {};
  return new RecordsyncError(ext.code ?? 'GRAPHQL_ERROR', first.message ?? 'GraphQL error', ext);
}

/**
 * A client of one recordsync server.
 *
 * @param {object} options
 * @param {string} options.url the GraphQL endpoint over HTTP; the WebSocket URL is derived from it
 * @param {string | (() => string | Promise<string>)} [options.token] a JWT, or a function called on every (re)connect
 * @param {typeof WebSocket} [options.webSocketImpl] a WebSocket class (Node 20 has none built in)
 * @param {number} [options.maxQueuedWrites] writes that may wait while the server is unreachable (1000)
 * @param {number} [options.maxSnapshotRecords] records a collection loads at most (10,000)
 */
export function createClient(options) {
  return new Client(options);
}

class Client {
  constructor({ url, token, webSocketImpl, maxQueuedWrites = 1000, maxSnapshotRecords = 10_000, fetch: fetchImpl } = {}) {
    if (!url) throw new TypeError('createClient needs a url');
    this.url = url;
    this.token = token;
    this.maxQueuedWrites = maxQueuedWrites;
    this.maxSnapshotRecords = maxSnapshotRecords;
    this.fetch = fetchImpl ?? globalThis.fetch.bind(globalThis);
    this.feeds = new Set();
    this.queue = [];
    this.draining = false;
    this.closed = false;
    this.connected = false;
    this.tokenFailure = null;
    this.ws = createSocket({
      url,
      webSocketImpl,
      shouldRetry: () => !this.closed && !this.tokenFailure,
      token: async () => {
        try {
          return await this.currentToken();
        } catch (err) {
          this.tokenFailure = err;
          throw err;
        }
      },
      on: {
        connected: () => {
          this.connected = true;
          this.tokenFailure = null;
          for (const feed of this.feeds) feed.onConnected();
        },
        closed: () => {
          this.connected = false;
          if (!this.closed) for (const feed of this.feeds) feed.onClosed();
        },
      },
    });
  }

  async currentToken() {
    return typeof this.token === 'function' ? await this.token() : this.token;
  }

  /** One GraphQL request over HTTP; its `data`, or a RecordsyncError. */
  async request(query, variables = {}) {
    const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
    const token = await this.currentToken();
    if (token) headers.authorization = `Bearer ${token}`;
    let res;
    try {
      res = await this.fetch(this.url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
    } catch (err) {
      throw new RecordsyncError('NETWORK_ERROR', `the server cannot be reached: ${err.message}`);
    }
    let body;
    try {
      body = await res.json();
    } catch {
      throw new RecordsyncError(res.status >= 500 ? 'SERVICE_UNAVAILABLE' : 'BAD_RESPONSE', `HTTP ${res.status} without a GraphQL answer`);
    }
    if (body.errors?.length) throw errorOf(body.errors);
    return body.data;
  }

  /** The change log's head as a cursor: where a feed without `after` starts. */
  async head() {
    return (await this.request(HEAD)).records.changeCursor;
  }

  /**
   * An exactly-once feed of the changes matching `{ collection, id, kinds }` after
   * `after` (or after the log's head as of this call).
   */
  subscribe(args = {}, sink = {}) {
    const feed = new Feed(this, args, sink);
    this.feeds.add(feed);
    feed.start();
    return feed;
  }

  /** A live collection: a snapshot kept equal to the server's records. */
  collection(name, options = {}) {
    return new Collection(this, name, options);
  }

  /** Applies `writes` atomically (`commitWrites`); resolves with `{ records, changeCursor }`. */
  commitWrites(writes) {
    return this.enqueue(MUTATIONS.batch, { writes }).then((r) => r);
  }

  /**
   * Queues a mutation: sent in order, with one idempotency key for all its attempts,
   * retried while the server is unreachable. Rejects at once when the queue is full.
   */
  enqueue(query, variables) {
    if (this.closed) return Promise.reject(new RecordsyncError('CLOSED', 'the client is closed'));
    if (this.queue.length >= this.maxQueuedWrites) {
      return Promise.reject(new RecordsyncError('QUEUE_FULL', `${this.maxQueuedWrites} writes are already waiting for the server`));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ query, variables: { ...variables, key: randomId() }, resolve, reject });
      this.drain();
    });
  }

  async drain() {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length && !this.closed) {
        const write = this.queue[0];
        let wait = 100;
        for (;;) {
          try {
            const data = await this.request(write.query, write.variables);
            write.resolve(data.result);
            break;
          } catch (err) {
            if (!RETRYABLE.has(err.code) || this.closed) {
              write.reject(err);
              break;
            }
            await sleep(wait);
            wait = Math.min(wait * 2, 2_000);
            if (this.closed) {
              write.reject(new RecordsyncError('CLOSED', 'the client was closed before the write was answered'));
              break;
            }
          }
        }
        this.queue.shift();
      }
    } finally {
      this.draining = false;
    }
  }

  /** Closes the socket and every feed; queued writes are refused. */
  close() {
    this.closed = true;
    for (const feed of [...this.feeds]) feed.unsubscribe();
    // The write being sent stays at the head of the queue and is answered by its attempt.
    for (const write of this.queue.splice(this.draining ? 1 : 0)) write.reject(new RecordsyncError('CLOSED', 'the client is closed'));
    // graphql-ws's dispose waits for a connection attempt under way, and rejects with its
    // close event when that attempt failed: nothing to do about that once closing.
    Promise.resolve(this.ws.dispose()).catch(() => {});
  }
}

/** One exactly-once feed. */
class Feed {
  constructor(client, { collection, id, kinds, after } = {}, sink = {}) {
    this.client = client;
    this.sink = sink;
    this.cursor = after ?? null;
    this.args = { collection, id, kinds };
    this.state = 'connecting';
    this.ended = false;
    this.everLive = false;
  }

  setStatus(status) {
    if (this.state === status) return;
    this.state = status;
    this.sink.status?.(status);
  }

  async start() {
    this.sink.status?.(this.state);
    try {
      // Without `after`, the position is pinned before subscribing, so a reconnect
      // before the first event loses nothing.
      if (this.cursor == null) this.cursor = await this.pinHead();
    } catch (err) {
      return this.fail(err);
    }
    if (this.ended) return;
    // graphql-ws sends this payload again on every reconnect; `after` is kept at the
    // last delivered cursor, so each re-subscription resumes exactly there.
    this.payload = {
      query: FEED,
      variables: { ...this.args, after: this.cursor },
    };
    this.dispose = this.client.ws.subscribe(this.payload, {
      next: (result) => {
        if (this.ended) return;
        if (result.errors?.length) return this.fail(errorOf(result.errors));
        const change = result.data?.recordChanged;
        if (!change) return;
        this.cursor = change.cursor;
        this.payload.variables.after = change.cursor;
        this.setStatus('live');
        this.sink.next?.(change);
      },
      error: (err) => this.fail(this.client.tokenFailure ?? toError(err)),
      complete: () => {
        if (!this.ended) this.end();
      },
    });
    if (this.client.connected) this.onConnected();
  }

  async pinHead() {
    for (let wait = 200; ; wait = Math.min(wait * 2, 5_000)) {
      try {
        return await this.client.head();
      } catch (err) {
        if (!RETRYABLE.has(err.code) || this.ended) throw err;
        await sleep(wait);
      }
    }
  }

  onConnected() {
    if (this.payload && !this.ended) this.setStatus('live');
  }

  onClosed() {
    if (!this.ended && this.state !== 'connecting') this.setStatus('reconnecting');
  }

  /** The last delivered cursor. */
  get status() {
    return this.state;
  }

  fail(err) {
    if (this.ended) return;
    this.end();
    this.sink.error?.(err);
  }

  end() {
    this.ended = true;
    this.client.feeds.delete(this);
    this.dispose?.();
  }

  unsubscribe() {
    this.end();
  }
}

function toError(err) {
  if (err instanceof Error) return err;
  if (Array.isArray(err)) return errorOf(err);
  if (err && typeof err.code === 'number') {
    return new RecordsyncError(err.code === 4403 ? 'UNAUTHENTICATED' : 'CONNECTION_CLOSED', `socket closed: ${err.code} ${err.reason ?? ''}`.trim());
  }
  return new RecordsyncError('CONNECTION_ERROR', String(err));
}

const ORDER_FIELDS = { CREATED_AT: 'createdAt', UPDATED_AT: 'updatedAt', ID: 'id' };

/** Whether `record` passes a RecordFilter, as the server would decide. */
function matches(filter, record) {
  if (!filter) return true;
  if (filter.ids && !filter.ids.includes(record.id)) return false;
  if (filter.dataContains) {
    for (const [k, v] of Object.entries(filter.dataContains)) {
      if (JSON.stringify(record.data?.[k]) !== JSON.stringify(v)) return false;
    }
  }
  const t = (s) => Date.parse(s);
  if (filter.createdAfter && !(t(record.createdAt) > t(filter.createdAfter))) return false;
  if (filter.createdBefore && !(t(record.createdAt) < t(filter.createdBefore))) return false;
  if (filter.updatedAfter && !(t(record.updatedAt) > t(filter.updatedAfter))) return false;
  if (filter.updatedBefore && !(t(record.updatedAt) < t(filter.updatedBefore))) return false;
  return true;
}

/** A comparator for `orderBy` (default `CREATED_AT ASC`), ties by id. */
function comparator(orderBy) {
  const field = ORDER_FIELDS[orderBy?.field ?? 'CREATED_AT'] ?? 'createdAt';
  const sign = orderBy?.direction === 'DESC' ? -1 : 1;
  const key = (r) => (field === 'id' ? r.id : Date.parse(r[field]));
  return (a, b) => {
    const ka = key(a);
    const kb = key(b);
    if (ka !== kb) return (ka < kb ? -1 : 1) * sign;
    return (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) * sign;
  };
}

/** A live collection. */
class Collection {
  constructor(client, name, { filter, orderBy } = {}) {
    this.client = client;
    this.name = name;
    this.filter = filter;
    this.orderBy = orderBy;
    this.compare = comparator(orderBy);
    this.server = new Map(); // id -> the server's record (or a tombstone { deleted, version })
    this.overlays = []; // optimistic writes not yet answered, in order
    this.listeners = new Set();
    this.state = 'loading';
    this.cursor = null;
    this.snapshot = { records: [], cursor: null, status: 'loading', pending: 0 };
    this.closed = false;
    this.ready = this.load();
    this.ready.catch(() => {});
  }

  async load() {
    this.setStatus('loading');
    const records = new Map();
    let after = null;
    let cursor = null;
    for (;;) {
      let page;
      try {
        page = (await this.client.request(PAGE, { collection: this.name, filter: this.filter, orderBy: this.orderBy, after })).records;
      } catch (err) {
        if (RETRYABLE.has(err.code) && !this.closed) {
          await sleep(500);
          continue;
        }
        this.setStatus('error');
        throw err;
      }
      // Every page after the first is read later, so it may hold newer versions; the
      // feed from the first page's position replays whatever changed meanwhile.
      cursor ??= page.changeCursor;
      for (const r of page.nodes) records.set(r.id, r);
      if (records.size > this.client.maxSnapshotRecords) {
        this.setStatus('error');
        throw new RecordsyncError('SNAPSHOT_TOO_LARGE', `collection ${this.name} holds more than ${this.client.maxSnapshotRecords} records`);
      }
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    if (this.closed) return;
    this.server = records;
    this.cursor = cursor;
    this.feed?.unsubscribe();
    await new Promise((resolve, reject) => {
      this.feed = this.client.subscribe(
        { collection: this.name, after: cursor },
        {
          next: (change) => {
            this.cursor = change.cursor;
            this.applyServer(change.record, change.kind);
            this.publish();
          },
          status: (s) => {
            if (s === 'live') {
              this.setStatus('live');
              resolve();
            } else if (s === 'reconnecting') {
              this.setStatus('reconnecting');
            }
          },
          error: (err) => {
            if (err.code === 'CURSOR_EXPIRED' && !this.closed) {
              // Too far behind the log: load the snapshot again and go on.
              this.ready = this.load();
              this.ready.then(resolve, reject);
              return;
            }
            this.setStatus('error');
            reject(err);
          },
        },
      );
      // An empty log delivers nothing to say the feed is live: the socket's ack does.
      if (this.client.connected) {
        this.setStatus('live');
        resolve();
      }
    });
    this.publish();
  }

  /**
   * Applies a record from the server (`kind`: what produced it), by version: an older
   * version never overwrites a newer one, and a delete leaves a tombstone so that a late
   * older version cannot bring the record back (a create after it can: an id used again
   * starts at version 1).
   */
  applyServer(record, kind, fromFeed = true) {
    const known = this.server.get(record.id);
    if (!fromFeed && known) {
      // A write's answer may arrive after the feed moved past it: the feed, which is in
      // commit order, wins. A tombstone stays; a delete answer removes only the
      // incarnation it deleted (a recreated id has another createdAt).
      if (known.deleted) return;
      if (kind === 'DELETED' && known.createdAt !== record.createdAt) return;
    }
    if (known && !known.deleted) {
      if (kind === 'DELETED' ? known.version > record.version : known.version >= record.version) return;
    } else if (known?.deleted && kind !== 'CREATED' && known.version >= record.version) {
      return;
    }
    if (kind === 'DELETED') {
      this.server.set(record.id, { id: record.id, version: record.version, createdAt: record.createdAt, deleted: true });
    } else if (record.collection !== this.name || !matches(this.filter, record)) {
      // A record that no longer matches the filter leaves the collection.
      this.server.delete(record.id);
    } else {
      this.server.set(record.id, record);
    }
  }

  setStatus(status) {
    if (this.state === status) return;
    this.state = status;
    this.publish();
  }

  publish() {
    const view = new Map();
    for (const [id, r] of this.server) if (!r.deleted) view.set(id, r);
    for (const o of this.overlays) o.apply(view);
    const records = [...view.values()].sort(this.compare);
    this.snapshot = { records, cursor: this.cursor, status: this.state, pending: this.overlays.length };
    for (const listener of [...this.listeners]) listener();
  }

  /** The current snapshot: the same object until something changes. */
  getSnapshot = () => this.snapshot;

  /** Calls `listener` after every change of the snapshot; returns the unsubscribe function. */
  subscribe = (listener) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** Runs an optimistic write: `apply` changes the view until the answer comes. */
  write(kind, apply, query, variables) {
    const overlay = { apply };
    this.overlays.push(overlay);
    this.publish();
    const done = () => {
      this.overlays = this.overlays.filter((o) => o !== overlay);
    };
    return this.client.enqueue(query, variables).then(
      (record) => {
        done();
        this.applyServer(record, kind, false);
        this.publish();
        return record;
      },
      (err) => {
        done();
        this.publish();
        throw err;
      },
    );
  }

  create(data, { id } = {}) {
    const rid = id ?? randomId();
    const now = new Date().toISOString();
    return this.write(
      'CREATED',
      (view) => view.set(rid, { id: rid, collection: this.name, data, version: 0, createdAt: now, updatedAt: now, changeCursor: null }),
      MUTATIONS.create,
      { input: { id: rid, collection: this.name, data } },
    );
  }

  update(id, data, { expectedVersion } = {}) {
    return this.write(
      'UPDATED',
      (view) => {
        const r = view.get(id);
        if (r) view.set(id, { ...r, data });
      },
      MUTATIONS.update,
      { id, data, v: expectedVersion },
    );
  }

  patch(id, patch, { expectedVersion } = {}) {
    return this.write(
      'UPDATED',
      (view) => {
        const r = view.get(id);
        if (r) view.set(id, { ...r, data: mergePatch(r.data, patch) });
      },
      MUTATIONS.patch,
      { id, patch, v: expectedVersion },
    );
  }

  delete(id, { expectedVersion } = {}) {
    return this.write('DELETED', (view) => view.delete(id), MUTATIONS.delete, { id, v: expectedVersion });
  }

  close() {
    this.closed = true;
    this.feed?.unsubscribe();
    this.listeners.clear();
  }
}

/** JSON Merge Patch (RFC 7396), as the server applies it. */
export function mergePatch(target, patch) {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out = target && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
