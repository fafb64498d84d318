// Types of recordsync-client.

export interface RecordsyncRecord<D = Record<string, unknown>> {
  id: string;
  collection: string;
  data: D;
  version: number;
  createdAt: string;
  updatedAt: string;
  /** The cursor of the change that produced this version (null while optimistic). */
  changeCursor: string | null;
}

export type ChangeKind = 'CREATED' | 'UPDATED' | 'DELETED';

export interface RecordChange<D = Record<string, unknown>> {
  cursor: string;
  kind: ChangeKind;
  record: RecordsyncRecord<D>;
  changedAt: string;
}

export class RecordsyncError extends Error {
  /** The server's `extensions.code` (or NETWORK_ERROR, QUEUE_FULL, CLOSED, ...). */
  code: string;
  /** For VERSION_CONFLICT: the record as it is now (when the caller may read it). */
  current?: RecordsyncRecord;
  currentVersion?: number;
  /** For a refused batch: the refused write's index. */
  index?: number;
}

export interface ClientOptions {
  /** The GraphQL endpoint over HTTP; the WebSocket URL is derived from it. */
  url: string;
  /** A JWT, or a (possibly async) function called on every (re)connect. */
  token?: string | (() => string | Promise<string>);
  /** A WebSocket class (Node 20 has none built in). */
  webSocketImpl?: unknown;
  /** Writes that may wait while the server is unreachable (1000); then they reject at once. */
  maxQueuedWrites?: number;
  /** Records a collection loads at most (10,000). */
  maxSnapshotRecords?: number;
  fetch?: typeof fetch;
}

export type FeedStatus = 'connecting' | 'live' | 'reconnecting';
export type CollectionStatus = 'loading' | 'live' | 'reconnecting' | 'error';

export interface FeedArgs {
  collection?: string;
  id?: string;
  kinds?: ChangeKind[];
  after?: string;
}

export interface FeedSink<D> {
  next?(change: RecordChange<D>): void;
  error?(err: RecordsyncError | Error): void;
  status?(status: FeedStatus): void;
}

export interface Feed {
  /** The last delivered cursor. */
  readonly cursor: string | null;
  readonly status: FeedStatus;
  unsubscribe(): void;
}

export interface RecordFilter {
  ids?: string[];
  dataContains?: Record<string, unknown>;
  createdAfter?: string;
  createdBefore?: string;
  updatedAfter?: string;
  updatedBefore?: string;
}

export interface RecordOrder {
  field: 'CREATED_AT' | 'UPDATED_AT' | 'ID';
  direction?: 'ASC' | 'DESC';
}

export interface Snapshot<D> {
  records: RecordsyncRecord<D>[];
  cursor: string | null;
  status: CollectionStatus;
  /** Optimistic writes not yet answered. */
  pending: number;
}

export interface Collection<D = Record<string, unknown>> {
  /** Resolves once the snapshot is loaded and the feed is live. */
  readonly ready: Promise<void>;
  /** The same object until something changes (works with React's useSyncExternalStore). */
  getSnapshot(): Snapshot<D>;
  subscribe(listener: () => void): () => void;
  create(data: D, options?: { id?: string }): Promise<RecordsyncRecord<D>>;
  update(id: string, data: D, options?: { expectedVersion?: number }): Promise<RecordsyncRecord<D>>;
  patch(id: string, patch: Partial<D> | Record<string, unknown>, options?: { expectedVersion?: number }): Promise<RecordsyncRecord<D>>;
  delete(id: string, options?: { expectedVersion?: number }): Promise<RecordsyncRecord<D>>;
  close(): void;
}

export type WriteInput =
  | { create: { id?: string; collection: string; data: Record<string, unknown> } }
  | { update: { id: string; data: Record<string, unknown>; expectedVersion?: number } }
  | { patch: { id: string; patch: Record<string, unknown>; expectedVersion?: number } }
  | { delete: { id: string; expectedVersion?: number } };

export interface Client {
  subscribe<D = Record<string, unknown>>(args: FeedArgs, sink: FeedSink<D>): Feed;
  collection<D = Record<string, unknown>>(name: string, options?: { filter?: RecordFilter; orderBy?: RecordOrder }): Collection<D>;
  commitWrites(writes: WriteInput[]): Promise<{ records: RecordsyncRecord[]; changeCursor: string }>;
  /** The change log's head as a cursor. */
  head(): Promise<string>;
  close(): void;
}

export function createClient(options: ClientOptions): Client;
export function webSocketUrl(url: string): string;
export function mergePatch<T>(target: T, patch: unknown): T;
export function randomId(): string;
export function sleep(ms: number): Promise<void>;
/** The graphql-ws client the client and the Apollo link share the settings of. */
export function createSocket(options: {
  url: string;
  webSocketImpl?: unknown;
  token: () => string | undefined | Promise<string | undefined>;
  shouldRetry: () => boolean;
  on?: Record<string, (...args: unknown[]) => void>;
}): import('graphql-ws').Client;
