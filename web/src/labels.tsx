import { useState } from "preact/hooks";
import { api, LABEL_COLORS, type Label } from "./api.ts";
import type { Shared } from "./main.tsx";
import { hrefOf } from "./route.ts";
import { Confirm, ErrorBanner, LabelChip, Notice } from "./ui.tsx";

function ColorSelect(props: { value: string; onChange: (v: string) => void; name: string; label: string }) {
  return (
    <select
      name={props.name}
      aria-label={props.label}
      value={props.value}
      onChange={(e) => props.onChange(e.currentTarget.value)}
    >
      {LABEL_COLORS.map((c) => (
        <option key={c} value={c}>
          {c}
        </option>
      ))}
    </select>
  );
}

function LabelRow({
  label,
  shared,
  onError,
  onDone,
}: {
  label: Label;
  shared: Shared;
  onError: (e: unknown) => void;
  onDone: (m: string) => void;
}) {
  const [name, setName] = useState(label.name);
  const [color, setColor] = useState(label.color);
  const [confirming, setConfirming] = useState(false);
  const changed = name.trim() !== label.name || color !== label.color;
  const save = async (event: Event) => {
    event.preventDefault();
    try {
      const body: Record<string, string> = {};
      if (name.trim() !== label.name) body.name = name.trim();
      if (color !== label.color) body.color = color;
      await api(`/labels/${label.id}`, { method: "PATCH", body });
      await shared.reloadLabels();
      onDone(`Label “${name.trim()}” saved.`);
    } catch (e) {
      onError(e);
    }
  };
  const remove = async () => {
    setConfirming(false);
    try {
      await api(`/labels/${label.id}`, { method: "DELETE" });
      await shared.reloadLabels();
      onDone(`Label “${label.name}” deleted.`);
    } catch (e) {
      onError(e);
    }
  };
  return (
    <li>
      <form class="label-row" onSubmit={save}>
        <LabelChip label={{ name: name || label.name, color }} />
        <input
          name="name"
          aria-label={`Name of label ${label.name}`}
          value={name}
          maxLength={50}
          onInput={(e) => setName(e.currentTarget.value)}
        />
        <ColorSelect name="color" label={`Colour of label ${label.name}`} value={color} onChange={setColor} />
        <button type="submit" disabled={!changed || name.trim() === ""}>
          Save
        </button>
        <a href={hrefOf(["contacts"], { label: label.id })}>Contacts</a>
        <button type="button" class="danger" onClick={() => setConfirming(true)}>
          Delete
        </button>
      </form>
      <Confirm
        open={confirming}
        title={`Delete the label “${label.name}”?`}
        confirmLabel="Delete label"
        onCancel={() => setConfirming(false)}
        onConfirm={() => void remove()}
      >
        <p>It is removed from every contact that carries it. The contacts themselves are kept.</p>
      </Confirm>
    </li>
  );
}

export function LabelsPage({ shared }: { shared: Shared }) {
  const [name, setName] = useState("");
  const [color, setColor] = useState("gray");
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const create = async (event: Event) => {
    event.preventDefault();
    setError(null);
    setDone(null);
    try {
      await api("/labels", { method: "POST", body: { name: name.trim(), color } });
      await shared.reloadLabels();
      setDone(`Label “${name.trim()}” created.`);
      setName("");
    } catch (e) {
      setError(e);
    }
  };
  return (
    <main class="page">
      <h1>Labels</h1>
      <form class="card label-create" onSubmit={create} aria-label="Create a label">
        <label>
          <span>New label</span>
          <input
            name="new-label"
            value={name}
            maxLength={50}
            required
            onInput={(e) => setName(e.currentTarget.value)}
          />
        </label>
        <div>
          <span class="field-title">Colour</span>
          <ColorSelect name="new-color" label="Colour of the new label" value={color} onChange={setColor} />
        </div>
        <button type="submit" class="primary" disabled={name.trim() === ""}>
          Create
        </button>
      </form>
      {done ? <Notice>{done}</Notice> : null}
      <ErrorBanner error={error} />
      {shared.labels.length === 0 ? (
        <p class="hint">No labels yet.</p>
      ) : (
        <ul class="label-list">
          {shared.labels.map((l) => (
            <LabelRow
              key={`${l.id}:${l.updated_at}`}
              label={l}
              shared={shared}
              onError={(e) => {
                setDone(null);
                setError(e);
              }}
              onDone={(m) => {
                setError(null);
                setDone(m);
              }}
            />
          ))}
        </ul>
      )}
    </main>
  );
}
