import { useState } from 'preact/hooks';
import type { Source } from './form-model';
import { bytes } from './format';

interface Props {
  source: Source;
  error: string | undefined;
  onChange(source: Source): void;
}

const SAMPLE = () => new URL('/samples/beach.mp4', location.href).toString();

/** Where the video to extend comes from: a URL, a dropped or chosen file, or a generation (chaining). */
export function SourcePicker({ source, error, onChange }: Props) {
  const describedBy = error ? 'source-error' : 'source-hint';
  return (
    <fieldset class="field source" aria-describedby={describedBy}>
      <legend>Video to extend</legend>
      <div class="segmented" role="radiogroup" aria-label="Source">
        <SourceTab label="Video URL" active={source.kind === 'url'} onSelect={() => onChange({ kind: 'url', url: '' })} />
        <SourceTab label="Upload a file" active={source.kind === 'upload'} onSelect={() => onChange({ kind: 'upload', file: null })} />
        {source.kind === 'chain' && <SourceTab label="Chained" active onSelect={() => undefined} />}
      </div>
      {source.kind === 'url' && <UrlSource url={source.url} invalid={!!error} describedBy={describedBy} onChange={(url) => onChange({ kind: 'url', url })} />}
      {source.kind === 'upload' && <DropZone file={source.file} invalid={!!error} onFile={(file) => onChange({ kind: 'upload', file })} />}
      {source.kind === 'chain' && (
        <div class="chained">
          <span>
            Extends <q>{source.prompt}</q>
          </span>
          <button type="button" class="link" onClick={() => onChange({ kind: 'url', url: '' })}>
            Choose another source
          </button>
        </div>
      )}
      {error ? (
        <p id="source-error" class="field-error" role="alert">
          {error}
        </p>
      ) : (
        <p id="source-hint" class="hint">
          MP4 or MOV, at most 50 MB, 30 s and 1920 px.
        </p>
      )}
    </fieldset>
  );
}

function SourceTab({ label, active, onSelect }: { label: string; active: boolean; onSelect(): void }) {
  return (
    <button type="button" role="radio" aria-checked={active} class={active ? 'active' : ''} onClick={onSelect}>
      {label}
    </button>
  );
}

function UrlSource({ url, invalid, describedBy, onChange }: { url: string; invalid: boolean; describedBy: string; onChange(url: string): void }) {
  return (
    <div class="url-source">
      <label for="video-url" class="visually-hidden">
        Video URL
      </label>
      <input
        id="video-url"
        name="videoUrl"
        type="url"
        inputMode="url"
        placeholder="https://example.com/clip.mp4"
        value={url}
        aria-invalid={invalid}
        aria-describedby={describedBy}
        onInput={(event) => onChange(event.currentTarget.value)}
      />
      <button type="button" class="secondary" onClick={() => onChange(SAMPLE())}>
        Use the sample clip
      </button>
    </div>
  );
}

/** A file by drag-and-drop or the file chooser; sent with the mutation as a GraphQL multipart request. */
function DropZone({ file, invalid, onFile }: { file: File | null; invalid: boolean; onFile(file: File | null): void }) {
  const [over, setOver] = useState(false);
  return (
    <div
      class={`drop-zone${over ? ' over' : ''}${invalid ? ' invalid' : ''}`}
      onDragOver={(event) => {
        event.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(event) => {
        event.preventDefault();
        setOver(false);
        onFile(event.dataTransfer?.files[0] ?? null);
      }}
    >
      <input
        id="video-file"
        name="video"
        type="file"
        accept="video/mp4,video/quicktime,.mp4,.mov"
        class="visually-hidden"
        onChange={(event) => onFile(event.currentTarget.files?.[0] ?? null)}
      />
      <label for="video-file">
        {file ? (
          <span class="file-chosen">
            <strong>{file.name}</strong> · {bytes(file.size)}
          </span>
        ) : (
          <span>
            Drop an MP4 or MOV here, or <span class="link">choose a file</span>
          </span>
        )}
      </label>
    </div>
  );
}

