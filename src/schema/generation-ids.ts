import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { namesNothing } from '../db/sql.ts';

/** A Generation's id as a globalID argument arrives in a resolver. */
export interface GenerationGlobalId {
  typename: string;
  id: string;
}

const givenIds = new WeakMap<GenerationGlobalId, string>();

/**
 * How this schema's globalID arguments are read (the builder's relay.decodeGlobalID). Each of
 * them names a Generation, and each has always taken a Generation's global ID or its raw id. Any
 * other string (a raw id, another type's global ID, garbage) is taken as the id it is, so that it
 * answers what any unknown id answers (null, or the typed NotFoundError) rather than the plugin's
 * "Invalid global ID" error: Pothos decodes arguments before the other plugins wrap the resolver,
 * so that error would also come ahead of UNAUTHENTICATED and bypass the field's error union.
 */
export function decodeArgumentId(globalID: string): GenerationGlobalId {
  let decoded: GenerationGlobalId | null = null;
  try {
    decoded = decodeGlobalID(globalID);
  } catch {
    // not a global ID: a raw id, or nothing at all
  }
  const named = decoded?.typename === 'Generation' ? decoded : { typename: 'Generation', id: globalID };
  const result = namesNothing(named.id) ? { typename: 'Generation', id: NO_ID } : named;
  givenIds.set(result, globalID);
  return result;
}

/** No row has this id: an id that no row could have is looked up as it, and finds nothing. */
export const NO_ID = '';

export { namesNothing } from '../db/sql.ts';

/**
 * The id as the client gave it, to name it in errors. (Pothos hands the decoded object through
 * unchanged when the argument's `for` type has no parseId.)
 */
export function givenId(decoded: GenerationGlobalId): string {
  return givenIds.get(decoded) ?? encodeGlobalID(decoded.typename, decoded.id);
}
