/**
 * The API key, kept in this browser's localStorage under a name GraphiQL's key bar shares
 * (src/graphiql-key.ts), so one key serves both on the same origin.
 */
export const KEY_STORAGE = 'extendql.apiKey';

export function storedKey(): string | null {
  try {
    return localStorage.getItem(KEY_STORAGE);
  } catch {
    return null; // storage disabled: the key lives for this page only
  }
}

export function storeKey(key: string): void {
  try {
    localStorage.setItem(KEY_STORAGE, key);
  } catch {
    // storage disabled or full: the key still works until the page is closed
  }
}

export function forgetKey(): void {
  try {
    localStorage.removeItem(KEY_STORAGE);
  } catch {
    // nothing stored
  }
}
