import type { Command } from '../args.ts';
import { GraphQLClient } from '../client.ts';
import { CliError } from '../errors.ts';
import { clean } from '../format.ts';
import { CliCancelGenerationDocument } from '../gql/graphql.ts';
import type { Io } from '../io.ts';

export type CancelCommand = Extract<Command, { kind: 'cancel' }>;

/** cancelGeneration: the generation CANCELED, or its typed error (already ended, not found). */
export async function cancel(command: CancelCommand, io: Io, signal: AbortSignal): Promise<void> {
  const client = new GraphQLClient({ ...command.connection, signal });
  const result = (await client.request(CliCancelGenerationDocument, { id: command.id })).cancelGeneration;
  switch (result.__typename) {
    case 'CancelGenerationSuccess': {
      const { generation } = result;
      if (command.json) io.stdout.write(`${JSON.stringify({ generation })}\n`);
      else io.stdout.write(`Generation ${generation.id} is ${generation.status}\n`);
      return;
    }
    case 'NotCancelableError':
      throw new CliError(`NotCancelableError: ${clean(result.message)}`, { type: result.__typename, message: result.message, id: result.id, status: result.status });
    case 'NotFoundError':
      throw new CliError(`NotFoundError: ${clean(result.message)}`, { type: result.__typename, message: result.message, id: result.id });
  }
}
