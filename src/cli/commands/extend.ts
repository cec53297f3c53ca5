import { extendError } from '../api-errors.ts';
import type { Command } from '../args.ts';
import { GraphQLClient } from '../client.ts';
import { checkWritable, DownloadCutShort, downloadVideo } from '../download.ts';
import { CliError, InterruptedError } from '../errors.ts';
import { clean, formatBytes, formatSeconds } from '../format.ts';
import { CliExtendVideoDocument, type GenerationStateFragment } from '../gql/graphql.ts';
import type { Io, Terminal } from '../io.ts';
import { createProgress, type Progress } from '../progress.ts';
import { uploadOf } from '../upload.ts';
import { watchGeneration } from '../watch.ts';

export type ExtendCommand = Extract<Command, { kind: 'extend' }>;

/** Why a generation ended without a video. */
export function endedWithoutVideo(generation: GenerationStateFragment): CliError {
  const { id, error } = generation;
  if (generation.status === 'FAILED' && error) {
    const upstream = error.upstreamStatus === null ? '' : ` (Segmind HTTP ${error.upstreamStatus})`;
    return new CliError(`Generation ${id} FAILED: ${clean(error.code)}: ${clean(error.message)}${upstream}`, { type: 'GenerationFailed', generation });
  }
  if (generation.status === 'SUCCEEDED') return new CliError(`Generation ${id}'s video was removed (${generation.videoExpiredAt ?? 'expired'})`, { type: 'VideoExpired', generation });
  return new CliError(`Generation ${id} ended ${generation.status} without a video`, { type: 'GenerationFailed', generation });
}

/** extendVideo, with the file of --video uploaded as a multipart request (and its own progress bar). */
async function submit(client: GraphQLClient, command: ExtendCommand, out: Terminal): Promise<GenerationStateFragment> {
  const file = command.upload === undefined ? undefined : await uploadOf(command.upload, 'variables.input.video');
  let progress: Progress | undefined;
  const upload = file && {
    ...file,
    onProgress: (sent: number, total: number) => (progress ??= createProgress(out)).uploading(sent, total),
  };
  try {
    const result = (await client.request(CliExtendVideoDocument, { input: command.input }, upload)).extendVideo;
    if (result.__typename !== 'ExtendVideoSuccess') throw extendError(result);
    return result.generation;
  } finally {
    progress?.end();
  }
}

/** What to run to finish the work of an interrupted extend later. */
const later = (id: string, out: string) => `\`extendql download ${id} --out ${out}\``;

/**
 * extendVideo, then the generation's progress from the generationUpdated subscription, then the
 * MP4, checked against the API's size and SHA-256, into `out`.
 */
export async function extend(command: ExtendCommand, io: Io, signal: AbortSignal): Promise<void> {
  const client = new GraphQLClient({ ...command.connection, signal });
  // People read progress on stdout; with --json it keeps out of the way on stderr.
  const human = command.json ? undefined : io.stdout;
  await checkWritable(command.out, command.force);

  let generation = await submit(client, command, human ?? io.stderr);
  human?.write(`Generation ${generation.id} accepted: ${generation.quality}, ${generation.duration}s, ${generation.motionMode} motion\n`);

  const progress = createProgress(human ?? io.stderr);
  try {
    progress.update(generation);
    for await (const state of watchGeneration(client, generation.id, signal)) {
      generation = state;
      progress.update(state);
    }
    if (generation.status !== 'SUCCEEDED' || !generation.video) throw endedWithoutVideo(generation);
    const video = generation.video;
    const file = await downloadVideo(video, command.out, {
      base: command.connection.endpoint,
      signal,
      force: command.force,
      onProgress: (received, total) => progress.downloading(received, total),
    });
    progress.end();
    human?.write(
      `Saved ${command.out}: ${formatBytes(file.bytes)}, ${video.width}x${video.height}, ${formatSeconds(video.durationSeconds)}, sha256 ${file.sha256}\n`,
    );
    if (command.json) io.stdout.write(`${JSON.stringify({ generation, file })}\n`);
  } catch (error) {
    const { id } = generation;
    if (error instanceof DownloadCutShort) {
      throw new CliError(`${error.message}; the partial download is kept, and ${later(id, command.out)} resumes it`, error.details, error.exitCode, error.retryable);
    }
    if (error instanceof InterruptedError) {
      throw new InterruptedError(`Interrupted; generation ${id} continues on the server: ${later(id, command.out)} saves it once it is done, \`extendql cancel ${id}\` stops it`);
    }
    throw error;
  } finally {
    progress.end();
  }
}
