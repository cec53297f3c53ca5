import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultExtractPersistedOperationId, usePersistedOperations } from '@graphql-yoga/plugin-persisted-operations';
import { parse, type GraphQLError } from 'graphql';
import { createGraphQLError, type GraphQLParams, type Plugin } from 'graphql-yoga';
import { ConfigError } from '../config.ts';
import type { Logger } from '../logger.ts';
import { isIntrospectionDocument } from './introspection.ts';
import { MAX_TOKENS } from './security.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The manifests of the project's own clients, written by `npm run codegen` (codegen.ts, the client
 * preset's `persistedDocuments`): the CLI's, and the studio's once it exists. Each is a JSON object
 * of document id ("sha256:<hex>") to document text. A missing one is skipped.
 */
export const PROJECT_MANIFESTS = ['src/cli/gql/persisted-documents.json', 'web/src/gql/persisted-documents.json'];

/** The request parameter that carries a document id (GraphQL over HTTP, Persisted Documents appendix). */
export const DOCUMENT_ID_PARAM = 'documentId';

export interface TrustedDocumentsOptions {
  /** False: allowlist mode. */
  allowArbitraryOperations: boolean;
  /** More manifests (absolute paths), from TRUSTED_DOCUMENTS; each must exist. */
  manifests: string[];
}

/** The parameters of a request (HTTP) or a subscribe message (WebSocket), with a document id perhaps. */
type Params = { query?: string | null; extensions?: Record<string, unknown> | null; [DOCUMENT_ID_PARAM]?: unknown };

const requestError = (message: string, code: string): GraphQLError => createGraphQLError(message, { extensions: { code, http: { status: 400 } } });

/**
 * The documents this server knows by id, and the rule for text: in allowlist mode only
 * introspection may come as text. HTTP (queries, mutations, uploads, SSE) goes through yoga's
 * persisted-operations plugin (`plugin()`); WebSocket operations through `queryFor`, which decides
 * the same way.
 */
export class TrustedDocuments {
  readonly allowArbitraryOperations: boolean;
  private readonly documents: ReadonlyMap<string, string>;
  constructor(documents: ReadonlyMap<string, string>, allowArbitraryOperations: boolean) {
    this.documents = documents;
    this.allowArbitraryOperations = allowArbitraryOperations;
  }

  /** The text of a trusted document; a bare SHA-256 hex (Apollo's `sha256Hash`) names it too. */
  documentOf(id: string): string | undefined {
    return this.documents.get(id) ?? this.documents.get(`sha256:${id}`);
  }

  /** `documentId` in the body (or a GET's URL), else Apollo's `extensions.persistedQuery.sha256Hash`. */
  idOf(params: Params, request: Request): string | null {
    if (typeof params[DOCUMENT_ID_PARAM] === 'string') return params[DOCUMENT_ID_PARAM];
    if (request.method === 'GET') {
      const fromUrl = new URL(request.url).searchParams.get(DOCUMENT_ID_PARAM);
      if (fromUrl) return fromUrl;
    }
    return defaultExtractPersistedOperationId(params as GraphQLParams, request, {});
  }

  /** Whether query text may run: always when open, else only introspection. */
  acceptsText(query: string): boolean {
    if (this.allowArbitraryOperations) return true;
    try {
      return isIntrospectionDocument(parse(query, { noLocation: true, maxTokens: MAX_TOKENS }));
    } catch {
      return false;
    }
  }

  readonly errors = {
    textRefused: () =>
      requestError('This server runs only its trusted documents: send the documentId of one instead of query text (introspection excepted)', 'PERSISTED_QUERY_ID_REQUIRED'),
    unknownId: () =>
      this.allowArbitraryOperations
        ? requestError('This documentId is not among the trusted documents of this server: send the query text instead', 'PERSISTED_QUERY_NOT_FOUND')
        : requestError('This documentId is not among the trusted documents of this server', 'PERSISTED_QUERY_NOT_IN_LIST'),
    missing: () =>
      requestError(this.allowArbitraryOperations ? 'Send a query, or the documentId of a trusted document' : 'Send the documentId of a trusted document', 'BAD_REQUEST'),
  };

  /** The text to run for a WebSocket operation's payload (graphql-ws sends "" as the query with an id); throws a GraphQLError. */
  queryFor(params: Params, request: Request): string {
    if (params.query) {
      if (!this.acceptsText(params.query)) throw this.errors.textRefused();
      return params.query;
    }
    const id = this.idOf(params, request);
    if (id === null) throw this.errors.missing();
    const text = this.documentOf(id);
    if (text === undefined) throw this.errors.unknownId();
    return text;
  }

  /** yoga's persisted-operations plugin, deciding as `queryFor` does. */
  plugin(): Plugin {
    const introspection = new WeakSet<Request>();
    const persisted = usePersistedOperations({
      allowArbitraryOperations: this.allowArbitraryOperations || ((request) => introspection.has(request)),
      extractPersistedOperationId: (params, request) => this.idOf(params, request),
      getPersistedOperation: (id) => this.documentOf(id) ?? null,
      customErrors: { persistedQueryOnly: this.errors.textRefused, notFound: this.errors.unknownId, keyNotFound: this.errors.missing },
    });
    return {
      ...persisted,
      onParams: (payload) => {
        // The plugin judges text by the request alone; it is told here which requests are introspection.
        if (!this.allowArbitraryOperations && payload.params.query && this.acceptsText(payload.params.query)) introspection.add(payload.request);
        return persisted.onParams?.(payload);
      },
    } as Plugin;
  }
}

/** A manifest's path as logs and errors name it: from the checkout when inside it. */
const shown = (path: string) => (relative(ROOT, path).startsWith('..') ? path : relative(ROOT, path));

/** One manifest: a JSON object of id to text; a `sha256:` id must be the hash of its text. Null when an optional one is missing. */
async function readManifest(path: string, optional: boolean): Promise<Map<string, string> | null> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    if (optional && (error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ConfigError(`Trusted documents: cannot read ${shown(path)}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError(`Trusted documents: ${shown(path)} is not a JSON object of document id to text`);
  const documents = new Map<string, string>();
  for (const [id, text] of Object.entries(json)) {
    if (typeof text !== 'string') throw new ConfigError(`Trusted documents: ${shown(path)}: the document ${id} is not a string`);
    const sha256 = /^sha256:([0-9a-f]{64})$/.exec(id)?.[1];
    if (sha256 && createHash('sha256').update(text).digest('hex') !== sha256) {
      throw new ConfigError(`Trusted documents: ${shown(path)}: the text of ${id} does not hash to its id`);
    }
    documents.set(id, text);
  }
  return documents;
}

/**
 * The union of the project's manifests (those present) and TRUSTED_DOCUMENTS (each required).
 * A manifest that cannot be read, or an id that names two texts, stops the start.
 */
export async function loadTrustedDocuments(options: TrustedDocumentsOptions, logger: Logger): Promise<TrustedDocuments> {
  const sources = [...PROJECT_MANIFESTS.map((path) => ({ path: join(ROOT, path), optional: true })), ...options.manifests.map((path) => ({ path, optional: false }))];
  const documents = new Map<string, string>();
  const loaded: string[] = [];
  for (const { path, optional } of sources) {
    const manifest = await readManifest(path, optional);
    if (!manifest) continue;
    loaded.push(shown(path));
    for (const [id, text] of manifest) {
      if (documents.has(id) && documents.get(id) !== text) throw new ConfigError(`Trusted documents: ${id} names two different documents (the second in ${shown(path)})`);
      documents.set(id, text);
    }
  }
  logger.info({ documents: documents.size, manifests: loaded, allowArbitraryOperations: options.allowArbitraryOperations }, 'trusted documents loaded');
  return new TrustedDocuments(documents, options.allowArbitraryOperations);
}
