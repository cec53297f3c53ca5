import { basename } from 'node:path';
import type { Command } from '../args.ts';
import { GraphQLClient } from '../client.ts';
import { DownloadCutShort, downloadVideo } from '../download.ts';
import { CliError } from '../errors.ts';
import { formatBytes, formatSeconds } from '../format.ts';
import { CliGenerationDocument } from '../gql/graphql.ts';
import type { Io } from '../io.ts';
import { createProgress } from '../progress.ts';
import { endedWithoutVideo } from './extend.ts';

export type DownloadCommand = Extract<Command, { kind: 'download' }>;

/** The file name in the video's URL (`/videos/<random id>.mp4`), as `curl -O` would save it. */
function defaultOut(url: string, base: URL): string {
  const name = basename(decodeURIComponent(new URL(url, base).pathname));
  return /^[A-Za-z0-9._-]+$/.test(name) && !name.startsWith('.') ? name : 'extendql-video.mp4';
}

/**
 * The MP4 of a SUCCEEDED generation, checked against the API's size and SHA-256; a cut-short
 * download (or a shorter file at --out) is resumed with a Range request.
 */
export async function download(command: DownloadCommand, io: Io, signal: AbortSignal): Promise<void> {
  const client = new GraphQLClient({ ...command.connection, signal });
  const human = command.json ? undefined : io.stdout;
  const generation = (await client.request(CliGenerationDocument, { id: command.id })).generation;
  if (!generation) throw new CliError(`NotFoundError: no generation of yours has the id ${command.id}`, { type: 'NotFoundError', id: command.id });
  if (generation.status !== 'SUCCEEDED' || !generation.video) {
    if (generation.status === 'QUEUED' || generation.status === 'RUNNING') {
      throw new CliError(`Generation ${generation.id} is ${generation.status}: its video is not ready yet`, { type: 'NotReady', generation });
    }
    throw endedWithoutVideo(generation);
  }
  const video = generation.video;
  const out = command.out ?? defaultOut(video.url, command.connection.endpoint);
  const progress = createProgress(human ?? io.stderr);
  try {
    const file = await downloadVideo(video, out, {
      base: command.connection.endpoint,
      signal,
      force: command.force,
      onResume: (from) => progress.resumed(from, video.byteSize),
      onProgress: (received, total) => progress.downloading(received, total),
    });
    progress.end();
    const what = `${formatBytes(file.bytes)}, ${video.width}x${video.height}, ${formatSeconds(video.durationSeconds)}, sha256 ${file.sha256}`;
    human?.write(file.alreadyComplete ? `${out} already is this video: ${what}\n` : `Saved ${out}: ${what}\n`);
    if (command.json) io.stdout.write(`${JSON.stringify({ generation, file })}\n`);
  } catch (error) {
    if (error instanceof DownloadCutShort) {
      throw new CliError(`${error.message}; the partial download is kept, and running this again resumes it`, error.details, error.exitCode, error.retryable);
    }
    throw error;
  } finally {
    progress.end();
  }
}
