import "./app.css";
import { render } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import {
  type Account,
  ApiError,
  all,
  api,
  forgetKey,
  type Label,
  type Page,
  setUnauthorizedHandler,
  storedKey,
  storeKey,
} from "./api.ts";
import { ContactPage } from "./contact.tsx";
import { ContactsPage } from "./contacts.tsx";
import { DuplicatesPage, MergePage } from "./duplicates.tsx";
import { ImportPage } from "./import.tsx";
import { LabelsPage } from "./labels.tsx";
import { useRoute } from "./route.ts";
import { ErrorBanner } from "./ui.tsx";
import { WebhooksPage } from "./webhooks.tsx";

interface Me {
  data: { organization: { id: string; name: string }; api_key: { last4: string; label: string | null } };
}

/** What every page gets: the organisation's accounts and labels (reloaded when labels change). */
export interface Shared {
  accounts: Account[];
  labels: Label[];
  reloadLabels: () => Promise<void>;
}

/** The message shown on the sign-in page when a key stops working mid-session. */
function signedOutMessage(error: ApiError): string {
  if (error.code === "expired_api_key")
    return `Your API key has expired: ${error.message} Sign in with a new key.`;
  if (error.code === "revoked_api_key")
    return `Your API key was revoked: ${error.message} Sign in with another key.`;
  return `${error.message} Sign in again.`;
}

function SignIn({ onSignedIn, message }: { onSignedIn: (me: Me) => void; message: string | null }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const me = await api<Me>("/me", { key: key.trim() });
      storeKey(key.trim());
      onSignedIn(me);
    } catch (e) {
      setError(
        e instanceof ApiError && e.status === 401
          ? new ApiError(401, e.code, `That API key was refused: ${e.message}`)
          : e,
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <form onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">Phonebook</h1>
        <p>Sign in with an API key of your organisation. It is kept in this tab only and sent as a header.</p>
        {message ? (
          <div class="banner warn" role="alert">
            {message}
          </div>
        ) : null}
        <ErrorBanner error={error} />
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          placeholder="pb_live_…"
          required
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
        />
        <button type="submit" class="primary" disabled={busy || key.trim() === ""}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}

function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState(storedKey() !== null);
  const [signedOut, setSignedOut] = useState<string | null>(null);
  const [shared, setShared] = useState<Omit<Shared, "reloadLabels"> | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const route = useRoute();

  const signOut = useCallback((message: string | null) => {
    forgetKey();
    setMe(null);
    setShared(null);
    setSignedOut(message);
  }, []);

  useEffect(() => {
    setUnauthorizedHandler((error) => signOut(signedOutMessage(error)));
    const key = storedKey();
    if (!key) return;
    api<Me>("/me")
      .then(setMe)
      .catch((e) => {
        if (!(e instanceof ApiError && e.status === 401)) setLoadError(e);
      })
      .finally(() => setChecking(false));
  }, [signOut]);

  const reloadLabels = useCallback(async () => {
    const labels = await all<Label>("/labels");
    setShared((s) => (s ? { ...s, labels } : s));
  }, []);

  useEffect(() => {
    if (!me) return;
    // /v1/accounts is one unpaged list (an organisation has few numbers).
    Promise.all([api<Page<Account>>("/accounts?status=all").then((r) => r.data), all<Label>("/labels")])
      .then(([accounts, labels]) => setShared({ accounts, labels }))
      .catch((e) => {
        if (!(e instanceof ApiError && e.status === 401)) setLoadError(e);
      });
  }, [me]);

  if (checking) return <div class="boot">Loading Phonebook…</div>;
  if (!me) {
    return (
      <>
        <ErrorBanner error={loadError} />
        <SignIn
          message={signedOut}
          onSignedIn={(m) => {
            setSignedOut(null);
            setLoadError(null);
            setMe(m);
          }}
        />
      </>
    );
  }
  const page = route.path[0];
  const ctx: Shared | null = shared ? { ...shared, reloadLabels } : null;
  const nav = (name: string, href: string, label: string) => (
    <a href={href} aria-current={page === name ? "page" : undefined}>
      {label}
    </a>
  );
  return (
    <>
      <header class="top">
        <a class="brand" href="#/contacts">
          Phonebook
        </a>
        <nav aria-label="Main">
          {nav("contacts", "#/contacts", "Contacts")}
          {nav("labels", "#/labels", "Labels")}
          {nav("import", "#/import", "Import")}
          {nav("duplicates", "#/duplicates", "Duplicates")}
          {nav("webhooks", "#/webhooks", "Webhooks")}
        </nav>
        <span class="who" title={`Key …${me.data.api_key.last4}`}>
          {me.data.organization.name}
        </span>
        <button type="button" class="link" onClick={() => signOut("You are signed out.")}>
          Sign out
        </button>
      </header>
      <ErrorBanner error={loadError} />
      {ctx ? (
        page === "contacts" && route.path[1] ? (
          <ContactPage id={route.path[1]} shared={ctx} />
        ) : page === "labels" ? (
          <LabelsPage shared={ctx} />
        ) : page === "import" ? (
          <ImportPage shared={ctx} />
        ) : page === "webhooks" ? (
          <WebhooksPage />
        ) : page === "duplicates" && route.path[1] === "merge" ? (
          <MergePage
            key={`${route.params.get("a")}.${route.params.get("b")}`}
            a={route.params.get("a") ?? ""}
            b={route.params.get("b") ?? ""}
          />
        ) : page === "duplicates" ? (
          <DuplicatesPage />
        ) : (
          <ContactsPage shared={ctx} params={route.params} />
        )
      ) : loadError ? null : (
        <main class="page" aria-busy="true">
          <div class="boot">Loading…</div>
        </main>
      )}
    </>
  );
}

const root = document.getElementById("root");
if (root) {
  root.textContent = "";
  render(<App />, root);
}
