import createClient, { type Client } from "openapi-fetch";
import { PhonebookError } from "./errors.ts";
import { type RetryHooks, type RetryOptions, retryingFetch } from "./retry.ts";
import type { paths } from "./schema.ts";

type Json<T> = T extends { content: { "application/json": infer B } } ? B : never;
/** The JSON body of the `status` answer of `method` on `path`, as generated from the OpenAPI document. */
export type ResponseOf<
  P extends keyof paths,
  M extends "get" | "post" | "patch" | "delete",
  S extends number,
> = paths[P][M] extends { responses: infer R } ? (S extends keyof R ? Json<R[S]> : never) : never;
type BodyOf<P extends keyof paths, M extends "post" | "patch"> = paths[P][M] extends {
  requestBody: { content: { "application/json": infer B } };
}
  ? B
  : paths[P][M] extends { requestBody?: { content: { "application/json": infer B } } }
    ? B
    : never;
type QueryOf<P extends keyof paths> = paths[P]["get"] extends { parameters: { query?: infer Q } }
  ? NonNullable<Q>
  : never;

export type Contact = ResponseOf<"/v1/contacts/{id}", "get", 200>["data"];
export type Label = ResponseOf<"/v1/labels/{id}", "get", 200>["data"];
export type Account = ResponseOf<"/v1/accounts", "get", 200>["data"][number];
export type Import = ResponseOf<"/v1/imports/{id}", "get", 200>["data"];
export type Me = ResponseOf<"/v1/me", "get", 200>["data"];
export type DeletedContact = ResponseOf<"/v1/contacts/{id}", "delete", 200>["data"];
export type BatchResult = ResponseOf<"/v1/contacts/batch", "post", 200>;
export type BulkLabelResult = ResponseOf<"/v1/contacts/bulk_label", "post", 200>["data"];

export type ContactCreate = BodyOf<"/v1/contacts", "post">;
export type ContactUpdate = BodyOf<"/v1/contacts/{id}", "patch">;
export type ContactBatch = BodyOf<"/v1/contacts/batch", "post">;
export type BulkLabel = BodyOf<"/v1/contacts/bulk_label", "post">;
export type LabelCreate = BodyOf<"/v1/labels", "post">;
export type LabelUpdate = BodyOf<"/v1/labels/{id}", "patch">;

/** Filters of a contact list; `limit` is the page size (1–100). */
export type ContactFilters = Omit<QueryOf<"/v1/contacts">, "cursor"> & {
  /** Resume from a `next_cursor` of an earlier page. */
  cursor?: string;
  /** List one account (its Meta phone_number_id) instead of every account of the organisation. */
  phone_number_id?: string;
};

export interface Page<T> {
  data: T[];
  has_more: boolean;
  next_cursor: string | null;
  request_id: string;
}

/**
 * Every item of a cursor-paginated list: `for await (const c of list)` walks
 * every page (following `next_cursor`, one request per page, as you go);
 * `.pages()` yields whole pages; `.first()` fetches only the first.
 */
export class PageIterator<T> implements AsyncIterable<T> {
  constructor(private readonly fetchPage: (cursor: string | undefined) => Promise<Page<T>>) {}

  first(): Promise<Page<T>> {
    return this.fetchPage(undefined);
  }

  async *pages(startCursor?: string): AsyncGenerator<Page<T>, void, undefined> {
    let cursor = startCursor;
    for (;;) {
      const page = await this.fetchPage(cursor);
      yield page;
      if (!page.has_more || page.next_cursor === null) return;
      cursor = page.next_cursor;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for await (const page of this.pages()) yield* page.data;
  }

  /** Every item in one array (for small lists; iterate for large ones). */
  async toArray(): Promise<T[]> {
    const all: T[] = [];
    for await (const item of this) all.push(item);
    return all;
  }
}

export interface PhonebookOptions {
  /** `pb_live_…`, sent as `Authorization: Bearer`. */
  apiKey: string;
  /** Where the server is, e.g. `https://phonebook.example.com` (default http://127.0.0.1:3000). */
  baseUrl?: string;
  /** Retries of 429, 503 and network errors (see docs/sdk.md); `{ maxAttempts: 1 }` turns them off. */
  retries?: RetryOptions & RetryHooks;
  /** A fetch to use instead of the global one. */
  fetch?: (input: Request) => Promise<Response>;
  /** Headers sent with every request (a User-Agent, a tracing header). */
  headers?: Record<string, string>;
}

export interface WriteOptions {
  /** Sent as Idempotency-Key; one is generated for every POST without it (and kept across retries). */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

type Result<T> = { data?: T; error?: unknown; response: Response };

/** The Phonebook API client. Every method throws PhonebookError on a non-2xx answer. */
export class Phonebook {
  /**
   * The typed openapi-fetch client over every route of the OpenAPI document
   * (with auth and retries), for what the methods below do not cover:
   * `await pb.raw.GET("/v1/imports/{id}", { params: { path: { id } } })`.
   */
  readonly raw: Client<paths>;

  constructor(options: PhonebookOptions) {
    if (!options.apiKey) throw new TypeError("Phonebook: apiKey is required.");
    const { sleep, random, newIdempotencyKey, ...retryOptions } = options.retries ?? {};
    const baseFetch = options.fetch ?? ((request: Request) => globalThis.fetch(request));
    this.raw = createClient<paths>({
      baseUrl: (options.baseUrl ?? "http://127.0.0.1:3000").replace(/\/+$/, ""),
      fetch: retryingFetch(baseFetch, retryOptions, { sleep, random, newIdempotencyKey }),
      headers: { ...options.headers, authorization: `Bearer ${options.apiKey}` },
    });
  }

  /** The organisation and key making the requests, with its rate limits. */
  async me(): Promise<Me> {
    return (await this.call(this.raw.GET("/v1/me"))).data;
  }

  readonly accounts = {
    list: async (options: { status?: "connected" | "all" } = {}): Promise<Account[]> =>
      (await this.call(this.raw.GET("/v1/accounts", { params: { query: options } }))).data,
  };

  readonly contacts = {
    /** Every contact matching `filters`, page after page: `for await (const c of pb.contacts.list({ search: "ana" }))`. */
    list: (filters: ContactFilters = {}): PageIterator<Contact> => {
      const { phone_number_id, limit, cursor: start, ...query } = filters;
      return new PageIterator(async (cursor) => {
        const q = { ...query, limit, cursor: cursor ?? start };
        const result =
          phone_number_id === undefined
            ? await this.raw.GET("/v1/contacts", { params: { query: q } })
            : await this.raw.GET("/v1/{phone_number_id}/contacts", {
                params: { path: { phone_number_id }, query: q },
              });
        return this.call(Promise.resolve(result));
      });
    },

    get: async (id: string): Promise<Contact> =>
      (await this.call(this.raw.GET("/v1/contacts/{id}", { params: { path: { id } } }))).data,

    /** On the org-level path: `from` names the account when the organisation has several. */
    create: async (body: ContactCreate, options: WriteOptions & { phone_number_id?: string } = {}) => {
      const init = { headers: idempotencyHeader(options), signal: options.signal };
      const result =
        options.phone_number_id === undefined
          ? await this.raw.POST("/v1/contacts", { body, ...init })
          : await this.raw.POST("/v1/{phone_number_id}/contacts", {
              params: { path: { phone_number_id: options.phone_number_id } },
              body: body as BodyOf<"/v1/{phone_number_id}/contacts", "post">,
              ...init,
            });
      return (await this.call(Promise.resolve(result))).data as Contact;
    },

    update: async (id: string, body: ContactUpdate): Promise<Contact> =>
      (await this.call(this.raw.PATCH("/v1/contacts/{id}", { params: { path: { id } }, body }))).data,

    delete: async (id: string): Promise<DeletedContact> =>
      (await this.call(this.raw.DELETE("/v1/contacts/{id}", { params: { path: { id } } }))).data,

    /** Create or upsert up to 1,000 contacts; one result per input, in order. */
    batch: async (body: ContactBatch, options: WriteOptions = {}): Promise<BatchResult> =>
      this.call(
        this.raw.POST("/v1/contacts/batch", {
          body,
          headers: idempotencyHeader(options),
          signal: options.signal,
        }),
      ),

    attachLabel: async (id: string, labelId: string, options: WriteOptions = {}): Promise<Contact> =>
      (
        await this.call(
          this.raw.POST("/v1/contacts/{id}/labels", {
            params: { path: { id } },
            body: { label_id: labelId },
            headers: idempotencyHeader(options),
          }),
        )
      ).data as Contact,

    detachLabel: async (id: string, labelId: string): Promise<Contact> =>
      (
        await this.call(
          this.raw.DELETE("/v1/contacts/{id}/labels/{label_id}", {
            params: { path: { id, label_id: labelId } },
          }),
        )
      ).data as Contact,

    bulkLabel: async (body: BulkLabel, options: WriteOptions = {}): Promise<BulkLabelResult> =>
      (
        await this.call(
          this.raw.POST("/v1/contacts/bulk_label", { body, headers: idempotencyHeader(options) }),
        )
      ).data,
  };

  readonly labels = {
    list: (options: { limit?: number } = {}): PageIterator<Label> =>
      new PageIterator(async (cursor) =>
        this.call(
          this.raw.GET("/v1/labels", {
            params: {
              query: { limit: options.limit, cursor },
            },
          }),
        ),
      ),
    get: async (id: string): Promise<Label> =>
      (await this.call(this.raw.GET("/v1/labels/{id}", { params: { path: { id } } }))).data,
    create: async (body: LabelCreate, options: WriteOptions = {}): Promise<Label> =>
      (await this.call(this.raw.POST("/v1/labels", { body, headers: idempotencyHeader(options) }))).data,
    update: async (id: string, body: LabelUpdate): Promise<Label> =>
      (await this.call(this.raw.PATCH("/v1/labels/{id}", { params: { path: { id } }, body }))).data,
    delete: async (id: string) =>
      (await this.call(this.raw.DELETE("/v1/labels/{id}", { params: { path: { id } } }))).data,
  };

  readonly imports = {
    /** Starts a file import (CSV or NDJSON text); poll `get` for progress. */
    create: async (
      file: string | Uint8Array,
      options: WriteOptions & {
        phone_number_id: string;
        mode?: "create" | "upsert";
        format?: "csv" | "ndjson";
      },
    ): Promise<Import> => {
      const contentType = options.format === "ndjson" ? "application/x-ndjson" : "text/csv";
      const result = await this.raw.POST("/v1/imports", {
        params: { query: { phone_number_id: options.phone_number_id, mode: options.mode } },
        // The raw file is the body: sent as given, not as JSON.
        body: file as never,
        bodySerializer: (body: unknown) => body as BodyInit,
        headers: { "content-type": contentType, ...idempotencyHeader(options) },
        signal: options.signal,
      });
      return (await this.call(Promise.resolve(result))).data as Import;
    },
    get: async (id: string): Promise<Import> =>
      (await this.call(this.raw.GET("/v1/imports/{id}", { params: { path: { id } } }))).data,
  };

  /** Unwraps an openapi-fetch result: the body of a 2xx, else a PhonebookError. */
  private async call<T>(pending: Promise<Result<T>>): Promise<T> {
    const { data, error, response } = await pending;
    if (!response.ok) throw new PhonebookError(response.status, error, response.headers);
    return data as T;
  }
}

function idempotencyHeader(options: WriteOptions): Record<string, string> {
  return options.idempotencyKey === undefined ? {} : { "idempotency-key": options.idempotencyKey };
}
