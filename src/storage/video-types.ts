/**
 * The containers stored videos come in, and the content type each is stored and served as: the
 * one place that pairs them (object keys, upload URLs and /videos/<id>.<extension> follow it).
 */
export const VIDEO_CONTENT_TYPES = { mp4: 'video/mp4', mov: 'video/quicktime' } as const;

export type VideoExtension = keyof typeof VIDEO_CONTENT_TYPES;
export type VideoContentType = (typeof VIDEO_CONTENT_TYPES)[VideoExtension];

export function contentTypeOf(extension: VideoExtension): VideoContentType {
  return VIDEO_CONTENT_TYPES[extension];
}

/** The extension of a content type; anything not a known video type is taken as MP4 (what extendql produces). */
export function extensionOf(contentType: string): VideoExtension {
  return contentType === VIDEO_CONTENT_TYPES.mov ? 'mov' : 'mp4';
}

/** The content type of an object key, by its extension (`.mov` or else MP4). */
export function contentTypeOfKey(key: string): VideoContentType {
  return key.endsWith('.mov') ? VIDEO_CONTENT_TYPES.mov : VIDEO_CONTENT_TYPES.mp4;
}
