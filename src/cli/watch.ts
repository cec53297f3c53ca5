import type { GraphQLClient } from './client.ts';
import { CliError, InterruptedError } from './errors.ts';
import { CliGenerationUpdatedDocument, type GenerationStateFragment } from './gql/graphql.ts';

export const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELED']);

/** Attempts in a row that may fail before watching gives up. */
const MAX_ATTEMPTS = 5;

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const interrupted = () => {
      clearTimeout(timer);
      reject(new InterruptedError());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', interrupted);
      resolve();
    }, ms);
    signal.addEventListener('abort', interrupted, { once: true });
  });
}

/**
 * The generation's state at each change, from the generationUpdated subscription, ending with
 * its terminal state. A dropped connection is resubscribed (each subscription starts with the
 * current state, so nothing is missed); MAX_ATTEMPTS failures in a row end it.
 */
export async function* watchGeneration(client: GraphQLClient, id: string, signal: AbortSignal): AsyncGenerator<GenerationStateFragment, void, undefined> {
  let failures = 0;
  for (;;) {
    let why: CliError;
    try {
      for await (const data of client.subscribe(CliGenerationUpdatedDocument, { id })) {
        failures = 0;
        yield data.generationUpdated;
        if (TERMINAL.has(data.generationUpdated.status)) return;
      }
      // Completed before a terminal status: the server is shutting down, perhaps restarting.
      why = new CliError(`${client.where} ended the progress stream before generation ${id} finished`, { type: 'NetworkError' }, undefined, true);
    } catch (error) {
      if (!(error instanceof CliError && error.retryable)) throw error;
      why = error;
    }
    if (++failures >= MAX_ATTEMPTS) throw why;
    await pause(Math.min(500 * 2 ** failures, 8000), signal);
  }
}
