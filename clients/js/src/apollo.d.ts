// Types of recordsync-client/apollo.

import type { ApolloLink } from '@apollo/client/core';
import type { DocumentNode } from 'graphql';

export interface RecordsyncLinkOptions {
  /** The GraphQL endpoint over HTTP; the WebSocket URL is derived from it. */
  url: string;
  token?: string | (() => string | Promise<string>);
  webSocketImpl?: unknown;
  fetch?: typeof fetch;
}

export interface RecordsyncLink extends ApolloLink {
  /** Closes the link's socket. */
  close(): void;
}

export function createRecordsyncLink(options: RecordsyncLinkOptions): RecordsyncLink;
export function resumable(document: DocumentNode): { document: DocumentNode; afterVariable: string | null; resultKey: string; pinned: boolean };
export function withIdempotencyKeys(document: DocumentNode, keyFor: (n: number) => string): DocumentNode;
