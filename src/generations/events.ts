/** Where status changes are announced. The server wires it to its subscription pub/sub. */
export interface GenerationEvents {
  generationUpdated(generationId: string): void;
}
