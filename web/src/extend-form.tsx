import { useEffect, useRef, useState } from 'preact/hooks';
import type { Api } from './api';
import { ApiError } from './api';
import { brokenRules, fieldErrors, toEstimateInput, toInput, type FieldErrors, type FormState } from './form-model';
import { DURATIONS, enumKeys, money, MOTION_MODES, QUALITIES, STYLES } from './format';
import { StudioEstimateCostDocument, StudioExtendVideoDocument, type MotionMode, type VideoQuality, type VideoStyle } from './gql/graphql';
import { SourcePicker } from './source-picker';
import type { GenerationStore } from './store';

interface Props {
  api: Api;
  store: GenerationStore;
  form: FormState;
  setForm(update: (form: FormState) => FormState): void;
}

type Estimate = { usd: number; quality: VideoQuality; duration: number } | null;

/** estimateCost for the form as it stands, a moment after it stops changing; its typed errors too. */
function useEstimate(api: Api, form: FormState): { estimate: Estimate; errors: FieldErrors } {
  const [state, setState] = useState<{ estimate: Estimate; errors: FieldErrors }>({ estimate: null, errors: {} });
  const latest = useRef(0);
  useEffect(() => {
    const input = toEstimateInput(form);
    const ask = ++latest.current;
    if (!input) return setState({ estimate: null, errors: {} });
    const timer = setTimeout(async () => {
      const data = await api.query(StudioEstimateCostDocument, { input }).catch(() => null);
      if (ask !== latest.current || !data) return;
      const result = data.estimateCost;
      if (result.__typename === 'CostEstimate') setState({ estimate: result, errors: {} });
      else if (result.__typename === 'InvalidInputError') setState({ estimate: null, errors: fieldErrors(result.fields).byField });
      else setState({ estimate: null, errors: { source: result.message } });
    }, 250);
    return () => clearTimeout(timer);
  }, [api, form]);
  return state;
}

export function ExtendForm({ api, store, form, setForm }: Props) {
  const { estimate, errors: estimateErrors } = useEstimate(api, form);
  const [submitted, setSubmitted] = useState<{ errors: FieldErrors; message: string | null } | null>(null);
  const [busy, setBusy] = useState(false);
  // One key per request: a retry after a lost answer replays instead of starting a second generation.
  const idempotencyKey = useRef(crypto.randomUUID());
  const errors = submitted ? submitted.errors : estimateErrors;
  const update = (change: Partial<FormState>) => {
    setSubmitted(null);
    setForm((current) => ({ ...current, ...change }));
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    try {
      const { extendVideo: result } = await api.mutate(StudioExtendVideoDocument, { input: toInput(form, idempotencyKey.current) });
      if (result.__typename === 'ExtendVideoSuccess') {
        store.created(result.generation);
        idempotencyKey.current = crypto.randomUUID();
        setSubmitted(null);
        // The file was sent; the rest of the form stays for the next one.
        if (form.source.kind === 'upload') setForm((current) => ({ ...current, source: { kind: 'upload', file: null } }));
      } else if (result.__typename === 'InvalidInputError') {
        const { byField, rest } = fieldErrors(result.fields);
        setSubmitted({ errors: byField, message: rest.length ? rest.join('; ') : null });
      } else {
        const retry = result.__typename === 'RateLimitedError' ? ` Try again in ${result.retryAfterSeconds} s.` : '';
        setSubmitted({ errors: {}, message: `${result.message}${retry}` });
      }
    } catch (error) {
      setSubmitted({ errors: {}, message: error instanceof ApiError ? error.message : String(error) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="panel extend-form" aria-labelledby="extend-title" onSubmit={submit} noValidate>
      <h2 id="extend-title">Extend a video</h2>
      <SourcePicker source={form.source} error={errors.source} onChange={(source) => update({ source, quality: source.kind === 'chain' ? null : (form.quality ?? 'Q540P') })} />
      <TextField id="prompt" label="Prompt" hint="What happens next, at most 2048 characters." error={errors.prompt} multiline value={form.prompt} onInput={(prompt) => update({ prompt })} />
      <Choices form={form} errors={errors} update={update} />
      <MoreOptions form={form} errors={errors} update={update} />
      <Rules form={form} />
      <div class="submit-row">
        <p class="estimate" aria-live="polite">
          {estimate ? (
            <>
              Estimated cost <strong data-testid="estimate">{money(estimate.usd)}</strong> · {QUALITIES[estimate.quality]}, {estimate.duration} s
            </>
          ) : (
            <span class="muted">The estimated cost shows once the form is complete.</span>
          )}
        </p>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? (form.source.kind === 'upload' ? 'Uploading…' : 'Starting…') : 'Extend'}
        </button>
      </div>
      {submitted?.message && (
        <p class="form-error" role="alert">
          {submitted.message}
        </p>
      )}
    </form>
  );
}

type Update = (change: Partial<FormState>) => void;

function Choices({ form, errors, update }: { form: FormState; errors: FieldErrors; update: Update }) {
  return (
    <div class="choices">
      <Radios id="duration" label="Duration" error={errors.duration} value={String(form.duration)} options={DURATIONS.map((d) => [String(d), `${d} s`])} onChange={(value) => update({ duration: value === '8' ? 8 : 5 })} />
      <div class="field">
        <label for="quality">Quality</label>
        <select id="quality" aria-invalid={!!errors.quality} aria-describedby={errors.quality ? 'quality-error' : undefined} value={form.quality ?? ''} onChange={(event) => update({ quality: (event.currentTarget.value || null) as VideoQuality | null })}>
          {form.source.kind === 'chain' && <option value="">Same as the source</option>}
          {enumKeys(QUALITIES).map((quality) => (
            <option value={quality}>{QUALITIES[quality]}</option>
          ))}
        </select>
        <FieldError id="quality" error={errors.quality} />
      </div>
      <Radios id="motionMode" label="Motion" error={errors.motionMode} value={form.motionMode} options={enumKeys(MOTION_MODES).map((m) => [m, MOTION_MODES[m]])} onChange={(value) => update({ motionMode: value as MotionMode })} />
    </div>
  );
}

function MoreOptions({ form, errors, update }: { form: FormState; errors: FieldErrors; update: Update }) {
  const open = !!(errors.negativePrompt || errors.style || errors.seed);
  return (
    <details class="more" open={open || undefined}>
      <summary>More options</summary>
      <TextField id="negativePrompt" label="Negative prompt" hint="What to avoid (optional)." error={errors.negativePrompt} value={form.negativePrompt} onInput={(negativePrompt) => update({ negativePrompt })} />
      <div class="choices">
        <div class="field">
          <label for="style">Style</label>
          <select id="style" value={form.style ?? ''} onChange={(event) => update({ style: (event.currentTarget.value || null) as VideoStyle | null })}>
            <option value="">None</option>
            {enumKeys(STYLES).map((style) => (
              <option value={style}>{STYLES[style]}</option>
            ))}
          </select>
          <FieldError id="style" error={errors.style} />
        </div>
        <TextField id="seed" label="Seed" hint="1 to 999999, for repeatable results." error={errors.seed} numeric value={form.seed} onInput={(seed) => update({ seed })} />
      </div>
    </details>
  );
}

/** The rules that tie fields together, shown before submit; a broken one is highlighted. */
function Rules({ form }: { form: FormState }) {
  const broken = brokenRules(form);
  return (
    <ul class="rules" aria-label="Rules">
      <li class={broken.fast ? 'broken' : ''}>Fast motion: 5 s only</li>
      <li class={broken.fullHd ? 'broken' : ''}>1080p: 5 s and normal motion only</li>
    </ul>
  );
}

function FieldError({ id, error }: { id: string; error: string | undefined }) {
  if (!error) return null;
  return (
    <p id={`${id}-error`} class="field-error" role="alert">
      {error}
    </p>
  );
}

interface TextFieldProps {
  id: string;
  label: string;
  hint: string;
  error: string | undefined;
  value: string;
  multiline?: boolean;
  numeric?: boolean;
  onInput(value: string): void;
}

function TextField({ id, label, hint, error, value, multiline, numeric, onInput }: TextFieldProps) {
  const shared = { id, name: id, value, 'aria-invalid': !!error, 'aria-describedby': error ? `${id}-error` : `${id}-hint` };
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {multiline ? (
        <textarea {...shared} rows={3} onInput={(event) => onInput(event.currentTarget.value)} />
      ) : numeric ? (
        <input {...shared} type="number" inputMode="numeric" min={1} max={999999} onInput={(event) => onInput(event.currentTarget.value)} />
      ) : (
        <input {...shared} type="text" onInput={(event) => onInput(event.currentTarget.value)} />
      )}
      {error ? <FieldError id={id} error={error} /> : <p id={`${id}-hint`} class="hint">{hint}</p>}
    </div>
  );
}

interface RadiosProps {
  id: string;
  label: string;
  error: string | undefined;
  value: string;
  options: [value: string, label: string][];
  onChange(value: string): void;
}

function Radios({ id, label, error, value, options, onChange }: RadiosProps) {
  return (
    <fieldset class="field" id={id} aria-invalid={!!error} aria-describedby={error ? `${id}-error` : undefined}>
      <legend>{label}</legend>
      <div class="segmented">
        {options.map(([option, text]) => (
          <label class={option === value ? 'active' : ''}>
            <input type="radio" name={id} value={option} checked={option === value} onChange={() => onChange(option)} />
            {text}
          </label>
        ))}
      </div>
      <FieldError id={id} error={error} />
    </fieldset>
  );
}
