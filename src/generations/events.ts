/** The generation that changed: its id, and the API key it belongs to. */
export interface ChangedGeneration {
  id: string;
  apiKeyId: string;
}

/** Where status changes are announced. The server wires it to its subscription pub/sub. */
export interface GenerationEvents {
  generationUpdated(generation: ChangedGeneration): void;
}
