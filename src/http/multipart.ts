import { rm } from 'node:fs/promises';
import { finished, type Readable, Transform } from 'node:stream';
import { Busboy, type BusboyFileStream } from '@fastify/busboy';
import { createGraphQLError, type GraphQLParams, type Plugin } from 'graphql-yoga';
import type { ServerContext } from '../context.ts';
import { spoolToFile, type SpooledFile } from '../generations/uploads.ts';

/** How long a client refused for too many uploads at once is asked to wait. */
const UPLOAD_RETRY_AFTER_SECONDS = 5;

/**
 * Uploads in progress, in this process and per API key. A slot is held from the moment a
 * multipart request is parsed until its response is sent (or its client goes away).
 */
export class UploadSlots {
  private total = 0;
  private readonly perKey = new Map<string, number>();

  private readonly limits: { total: number; perKey: number };
  constructor(limits: { total: number; perKey: number }) {
    this.limits = limits;
  }

  /** A release function, or the limit that is reached. */
  acquire(key: string): { release: () => void } | { refused: string } {
    const held = this.perKey.get(key) ?? 0;
    if (held >= this.limits.perKey) return { refused: `This API key may send ${this.limits.perKey} uploads at once` };
    if (this.total >= this.limits.total) return { refused: `This server takes ${this.limits.total} uploads at once` };
    this.total++;
    this.perKey.set(key, held + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const left = (this.perKey.get(key) ?? 1) - 1;
        if (left > 0) this.perKey.set(key, left);
        else this.perKey.delete(key);
      },
    };
  }
}

export interface StreamingUploadOptions {
  /** Where files are written as they arrive. */
  tempDir(): Promise<string>;
  /** Largest `operations` or `map` field. */
  maxFieldBytes: number;
  /** Largest multipart body; bodies without a declared length are counted as they arrive. */
  maxRequestBytes: number;
  slots: UploadSlots;
  /** The key a request presents, resolved: only a known, active key may send an upload. */
  authenticate(presented: string | null): Promise<{ id: string } | null>;
}

const clientError = (status: number, message: string, headers?: Record<string, string>) =>
  createGraphQLError(message, { extensions: { http: { status, ...(headers && { headers }) }, code: status === 429 ? 'RATE_LIMITED' : 'BAD_REQUEST' } });

/** A request without a valid key: refused before its body is read, and the connection is not kept for the rest of it. */
const unauthenticated = () =>
  createGraphQLError('A valid API key is required: send it in the x-api-key header', {
    extensions: { http: { status: 401, headers: { connection: 'close' } }, code: 'UNAUTHENTICATED' },
  });

const isMultipartPost = (request: Request) => request.method === 'POST' && /^multipart\/form-data\b/i.test(request.headers.get('content-type') ?? '');

/** The files of one request and its upload slot, given back when the request ends, whatever happened. */
class RequestUploads {
  private readonly files: { source: BusboyFileStream; spooled: Promise<SpooledFile> }[] = [];
  private disposed: Promise<void> | null = null;

  private readonly release: () => void;
  constructor(release: () => void) {
    this.release = release;
  }

  add(source: BusboyFileStream, spooled: Promise<SpooledFile>) {
    spooled.catch(() => {});
    this.files.push({ source, spooled });
  }

  dispose(): Promise<void> {
    this.disposed ??= (async () => {
      for (const file of this.files) {
        // A file still arriving stops; spoolToFile removes its partial file then.
        file.source.destroy();
        const spooled = await file.spooled.catch(() => null);
        if (spooled) await rm(spooled.path, { force: true });
      }
      this.release();
    })();
    return this.disposed;
  }
}

/**
 * Parses GraphQL multipart requests (https://github.com/jaydenseric/graphql-multipart-request-spec)
 * as they stream: the file part goes straight to a temporary file, and the operation gets a
 * SpooledFile in its place. Memory stays at a few stream buffers per upload, whatever the file's
 * size. Only a valid API key may upload (else 401), and uploads at once are capped per process
 * and per key (over the cap, 429 with Retry-After); both are decided before the body is read, so
 * made-up keys take no slot and get nothing written to disk. Temporary files are removed when
 * the response is sent or the client goes away.
 */
export function useStreamingUploads(options: StreamingUploadOptions): Plugin {
  const pending = new WeakMap<Request, RequestUploads>();
  return {
    onRequestParse({ request, serverContext, setRequestParser }) {
      const { req, res } = serverContext as ServerContext;
      // Requests that did not come through the Node server (yoga.fetch in-process) keep yoga's own parser.
      if (!req || !isMultipartPost(request)) return;
      setRequestParser(async () => {
        const identity = await options.authenticate(request.headers.get('x-api-key'));
        if (!identity) throw unauthenticated();
        const slot = options.slots.acquire(identity.id);
        if ('refused' in slot) {
          throw clientError(429, `${slot.refused}; retry in ${UPLOAD_RETRY_AFTER_SECONDS} s`, { 'retry-after': String(UPLOAD_RETRY_AFTER_SECONDS) });
        }
        const uploads = new RequestUploads(slot.release);
        pending.set(request, uploads);
        res?.once('close', () => void uploads.dispose());
        try {
          return await parseMultipart(req, request.headers.get('content-type')!, options, uploads);
        } catch (error) {
          await uploads.dispose();
          throw error;
        }
      });
    },
    async onResponse({ request }) {
      await pending.get(request)?.dispose();
    },
  };
}

/** The plugin as the server configures it: temporary files beside the storage's own. */
export function streamingUploadsFor(
  config: { maxRequestBytes: number; maxUploadRequestBytes: number; uploads: { maxConcurrent: number; maxConcurrentPerKey: number } },
  storage: { tempDir(): Promise<string> },
  authenticate: StreamingUploadOptions['authenticate'],
): Plugin {
  return useStreamingUploads({
    tempDir: () => storage.tempDir(),
    maxFieldBytes: config.maxRequestBytes,
    maxRequestBytes: config.maxUploadRequestBytes,
    slots: new UploadSlots({ total: config.uploads.maxConcurrent, perKey: config.uploads.maxConcurrentPerKey }),
    authenticate,
  });
}

/** Counts the bytes of a body as they pass; past `maxBytes` it fails with 413. */
function byteLimit(maxBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > maxBytes) return done(clientError(413, `Request bodies are limited to ${maxBytes} bytes`, { connection: 'close' }));
      done(null, chunk);
    },
  });
}

function parseMultipart(body: Readable, contentType: string, options: StreamingUploadOptions, uploads: RequestUploads): Promise<GraphQLParams> {
  return new Promise((resolve, reject) => {
    let busboy: InstanceType<typeof Busboy>;
    try {
      busboy = new Busboy({
        headers: { 'content-type': contentType },
        limits: { fieldNameSize: 100, fieldSize: options.maxFieldBytes, fields: 8, files: 1, parts: 10, fileSize: options.maxRequestBytes },
        defCharset: 'utf-8',
      });
    } catch (error) {
      return reject(clientError(400, `POST body sent invalid multipart data: ${(error as Error).message}`));
    }
    const counter = byteLimit(options.maxRequestBytes);
    let settled = false;
    // On failure the rest of the body is read and dropped (still counted, so at most
    // maxRequestBytes): the answer reaches the client and its connection stays usable. Destroying
    // the body instead would close the connection before the answer is sent.
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      counter.unpipe(busboy);
      busboy.destroy();
      counter.resume();
      const known = error instanceof Error && 'extensions' in error;
      reject(known ? error : clientError(400, `POST body sent invalid multipart data: ${(error as Error).message}`));
    };
    const fields = new Map<string, string>();
    const files = new Map<string, Promise<SpooledFile>>();
    const tempDir = options.tempDir();
    busboy.on('field', (name, value, _nameTruncated, valueTruncated) => {
      if (valueTruncated) return fail(new Error(`Field value size exceeded: ${options.maxFieldBytes} bytes`));
      fields.set(name, value);
    });
    busboy.on('file', (name, stream, filename, _encoding, mimeType) => {
      const spooled = tempDir.then((dir) => spoolToFile(stream, dir, { name: filename, type: mimeType }));
      uploads.add(stream, spooled);
      files.set(name, spooled);
      spooled.catch(fail);
    });
    busboy.on('fieldsLimit', () => fail(new Error('Fields limit exceeded: 8')));
    busboy.on('filesLimit', () => fail(new Error('Files limit exceeded: 1')));
    busboy.on('partsLimit', () => fail(new Error('Parts limit exceeded: 10')));
    busboy.on('error', fail);
    busboy.on('finish', () => {
      Promise.all([...files].map(async ([name, spooled]) => [name, await spooled] as const))
        .then((spooled) => {
          if (settled) return;
          settled = true;
          try {
            resolve(assembleOperations(fields, new Map(spooled)));
          } catch (error) {
            reject(error);
          }
        })
        .catch(fail);
    });
    // A client that goes away mid-body ends the parse (and, through `uploads`, its temporary file).
    finished(body, { writable: false }, (error) => error && fail(error));
    counter.on('error', (error) => {
      body.unpipe(counter);
      // Past the limit while being dropped: the connection is closed (the answer says so when it
      // is this error that is answered).
      if (settled) body.destroy();
      else fail(error);
    });
    body.pipe(counter).pipe(busboy);
  });
}

/** The operations with each mapped file (or field) put at its variable paths, as the spec says. */
function assembleOperations(fields: Map<string, string>, files: Map<string, SpooledFile>): GraphQLParams {
  const parse = (name: string) => {
    const text = fields.get(name);
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw clientError(400, `Multipart form field "${name}" must be a valid JSON string`);
    }
  };
  const operations = parse('operations');
  if (operations === undefined) throw clientError(400, 'Missing multipart form field "operations"');
  if (typeof operations !== 'object' || operations === null) throw clientError(400, 'Multipart form field "operations" must be a JSON object or array');
  const map = parse('map') ?? {};
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw clientError(400, 'Multipart form field "map" must be a JSON object');
  for (const [part, paths] of Object.entries(map as Record<string, unknown>)) {
    if (!Array.isArray(paths) || !paths.every((path) => typeof path === 'string')) {
      throw clientError(400, `Multipart form field "map" must give a list of paths for "${part}"`);
    }
    const value = files.get(part) ?? fields.get(part) ?? null;
    for (const path of paths as string[]) setPath(operations as Record<string, unknown>, path.split('.'), value);
  }
  return operations as GraphQLParams;
}

function setPath(target: Record<string, unknown>, keys: string[], value: unknown): void {
  let current = target;
  for (const [index, key] of keys.entries()) {
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') return;
    if (index === keys.length - 1) {
      current[key] = value;
      return;
    }
    const next = current[key];
    if (!Object.hasOwn(current, key) || typeof next !== 'object' || next === null) current[key] = {};
    current = current[key] as Record<string, unknown>;
  }
}
