// recordsync-client/apollo: a terminating ApolloLink for recordsync.
//
// Queries and mutations go over HTTP, subscriptions over one graphql-ws socket. For
// `recordChanged` the link remembers the last `cursor` each operation delivered (adding
// `cursor` to the selection, and an `after` argument bound to a variable of its own, when
// the document lacks them) and re-subscribes with `after` set to it after every
// reconnect, so `client.subscribe`, `useSubscription` and `subscribeToMore` see every
// change once. Mutations get idempotency keys, kept across the link's own retries.

import { ApolloLink, Observable } from '@apollo/client/core/index.js';
import { Kind, print, visit } from 'graphql';

import { createSocket, randomId, sleep } from './index.js';

const AFTER_VARIABLE = '__recordsyncAfter';
const WRITE_FIELDS = new Set(['createRecord', 'updateRecord', 'patchRecord', 'deleteRecord', 'commitWrites']);

/**
 * The document with `recordChanged` made resumable: `cursor` selected and `after` bound
 * to a variable. Returns the document and the variable that carries `after`.
 */
export function resumable(document) {
  let afterVariable = null;
  let added = false;
  let resultKey = 'recordChanged';
  const doc = visit(document, {
    Field: {
      enter(field) {
        if (field.name.value !== 'recordChanged') return undefined;
        resultKey = field.alias?.value ?? 'recordChanged';
        let args = field.arguments ?? [];
        const after = args.find((a) => a.name.value === 'after');
        if (after && after.value.kind === Kind.VARIABLE) {
          afterVariable = after.value.name.value;
        } else if (!after) {
          afterVariable = AFTER_VARIABLE;
          added = true;
          args = [...args, { kind: Kind.ARGUMENT, name: { kind: Kind.NAME, value: 'after' }, value: { kind: Kind.VARIABLE, name: { kind: Kind.NAME, value: AFTER_VARIABLE } } }];
        }
        const selections = field.selectionSet?.selections ?? [];
        const hasCursor = selections.some((s) => s.kind === Kind.FIELD && s.name.value === 'cursor' && !s.alias);
        return {
          ...field,
          arguments: args,
          selectionSet: {
            kind: Kind.SELECTION_SET,
            selections: hasCursor ? selections : [...selections, { kind: Kind.FIELD, name: { kind: Kind.NAME, value: 'cursor' } }],
          },
        };
      },
    },
  });
  if (!added) return { document: doc, afterVariable, resultKey, pinned: false };
  // The new variable needs a definition on the operation.
  const withDefinition = visit(doc, {
    OperationDefinition(op) {
      if (op.operation !== 'subscription') return undefined;
      return {
        ...op,
        variableDefinitions: [
          ...(op.variableDefinitions ?? []),
          {
            kind: Kind.VARIABLE_DEFINITION,
            variable: { kind: Kind.VARIABLE, name: { kind: Kind.NAME, value: AFTER_VARIABLE } },
            type: { kind: Kind.NAMED_TYPE, name: { kind: Kind.NAME, value: 'String' } },
          },
        ],
      };
    },
  });
  return { document: withDefinition, afterVariable, resultKey, pinned: true };
}

/** The mutation with an `idempotencyKey` argument on every write field that has none. */
export function withIdempotencyKeys(document, keyFor) {
  let n = 0;
  return visit(document, {
    Field(field, _key, _parent, _path, ancestors) {
      if (!WRITE_FIELDS.has(field.name.value)) return undefined;
      // Only root fields of a mutation are writes.
      const depth = ancestors.filter((a) => a && a.kind === Kind.SELECTION_SET).length;
      if (depth !== 1) return undefined;
      if ((field.arguments ?? []).some((a) => a.name.value === 'idempotencyKey')) return undefined;
      const key = keyFor(n);
      n += 1;
      return {
        ...field,
        arguments: [...(field.arguments ?? []), { kind: Kind.ARGUMENT, name: { kind: Kind.NAME, value: 'idempotencyKey' }, value: { kind: Kind.STRING, value: key } }],
      };
    },
  });
}

class RecordsyncLink extends ApolloLink {
  constructor({ url, token, webSocketImpl, fetch: fetchImpl }) {
    super();
    this.url = url;
    this.token = token;
    this.fetch = fetchImpl ?? globalThis.fetch.bind(globalThis);
    this.ws = createSocket({
      url,
      webSocketImpl,
      shouldRetry: () => !this.closed,
      token: () => this.currentToken(),
    });
  }

  async currentToken() {
    return typeof this.token === 'function' ? await this.token() : this.token;
  }

  request(operation) {
    const definition = operation.query.definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION);
    if (definition?.operation === 'subscription') return this.subscription(operation);
    return this.http(operation, definition?.operation === 'mutation');
  }

  subscription(operation) {
    const { document, afterVariable, resultKey, pinned } = resumable(operation.query);
    const payload = {
      query: print(document),
      variables: { ...operation.variables },
      operationName: operation.operationName || undefined,
    };
    return new Observable((observer) => {
      let dispose = null;
      let stopped = false;
      (async () => {
        if (pinned) {
          // No `after` in the document: start at the head as of now, pinned before
          // subscribing, so a reconnect before the first event loses nothing.
          try {
            payload.variables[afterVariable] = await this.head();
          } catch (err) {
            observer.error(err);
            return;
          }
        }
        if (stopped) return;
        dispose = this.ws.subscribe(payload, {
          next: (result) => {
            const cursor = result.data?.[resultKey]?.cursor;
            // Sent again on every reconnect: resume right after what was delivered.
            if (cursor && afterVariable) payload.variables[afterVariable] = cursor;
            observer.next(result);
          },
          error: (err) => {
            if (Array.isArray(err)) {
              // GraphQL errors (CURSOR_EXPIRED, FORBIDDEN): a result, with their codes.
              observer.next({ errors: err });
              observer.complete();
            } else {
              observer.error(err instanceof Error ? err : new Error(err?.reason || String(err?.code ?? err)));
            }
          },
          complete: () => observer.complete(),
        });
      })();
      return () => {
        stopped = true;
        dispose?.();
      };
    });
  }

  /** The change log's head as a cursor, over HTTP. */
  async head() {
    for (let attempt = 0; ; attempt += 1) {
      try {
        const headers = { 'content-type': 'application/json' };
        const t = await this.currentToken();
        if (t) headers.authorization = `Bearer ${t}`;
        const res = await this.fetch(this.url, { method: 'POST', headers, body: JSON.stringify({ query: '{ records(first: 0) { changeCursor } }' }) });
        const body = await res.json();
        const cursor = body.data?.records?.changeCursor;
        if (cursor) return cursor;
        throw new Error(body.errors?.[0]?.message ?? 'no changeCursor');
      } catch (err) {
        if (attempt >= 5 || this.closed) throw err;
        await sleep(200 * 2 ** attempt);
      }
    }
  }

  http(operation, mutation) {
    const context = operation.getContext();
    let query = operation.query;
    if (mutation) {
      // One key per write field, for every attempt of this operation.
      const keys = (context.recordsyncKeys ??= []);
      query = withIdempotencyKeys(query, (n) => (keys[n] ??= randomId()));
      operation.setContext({ recordsyncKeys: keys });
    }
    const body = JSON.stringify({ query: print(query), variables: operation.variables, operationName: operation.operationName || undefined });
    return new Observable((observer) => {
      let cancelled = false;
      (async () => {
        for (let attempt = 0; ; attempt += 1) {
          try {
            const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
            const t = await this.currentToken();
            if (t) headers.authorization = `Bearer ${t}`;
            const res = await this.fetch(this.url, { method: 'POST', headers, body });
            const result = await res.json();
            if (cancelled) return;
            observer.next(result);
            observer.complete();
            return;
          } catch (err) {
            // A mutation is retried with its keys (safe: a write that committed answers
            // again); a query too, since reading twice changes nothing.
            if (cancelled) return;
            if (attempt >= 5) {
              observer.error(err);
              return;
            }
            await sleep(200 * 2 ** attempt);
          }
        }
      })();
      return () => {
        cancelled = true;
      };
    });
  }

  /** Closes the socket. */
  close() {
    this.closed = true;
    Promise.resolve(this.ws.dispose()).catch(() => {});
  }
}

/** A terminating ApolloLink: queries and mutations over HTTP, subscriptions over the WebSocket. */
export function createRecordsyncLink(options) {
  return new RecordsyncLink(options);
}
