// The public API, called with the key in the Authorization header. The key lives in
// sessionStorage only: never in a URL, a cookie or the console.

const KEY_NAME = "imggo-fn.api-key";
const TIMEOUT_MS = 15000; // every call is bounded: a hung server shows an error, not a spinner

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export const apiKey = {
  get: () => sessionStorage.getItem(KEY_NAME),
  set: (value) => sessionStorage.setItem(KEY_NAME, value),
  clear: () => sessionStorage.removeItem(KEY_NAME),
};

let unauthorized = () => {};

/** Called (once per refusal) when the server answers 401: the key is gone or wrong. */
export function onUnauthorized(callback) {
  unauthorized = callback;
}

async function errorOf(response) {
  try {
    const { error } = await response.json();
    return new ApiError(response.status, error.code, error.message, error.details || {});
  } catch {
    return new ApiError(response.status, `http_${response.status}`, `HTTP ${response.status}`);
  }
}

async function call(path, { method = "GET", body, cache = "no-store" } = {}) {
  const headers = {};
  const key = apiKey.get();
  if (key) headers.Authorization = `Bearer ${key}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      body,
      headers,
      cache,
      credentials: "omit",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    if (err.name === "TimeoutError") {
      throw new ApiError(0, "timeout", "the server did not answer in time");
    }
    throw new ApiError(
      0,
      "unreachable",
      "the server is not reachable (is imggo-fn serve running?)",
    );
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401) {
      apiKey.clear();
      unauthorized(error);
    }
    throw error;
  }
  return response;
}

export async function getJson(path) {
  return (await call(path)).json();
}

export async function postForm(path, form) {
  return (await call(path, { method: "POST", body: form })).json();
}

/** The body as text and its media type (the ?format= exports). */
export async function getText(path) {
  const response = await call(path);
  return { text: await response.text(), type: response.headers.get("Content-Type") || "" };
}

const images = new Map();

/** An object URL for an authenticated image (an <img src> cannot send the header).
 *  One fetch per path per page; the server lets the browser cache it privately. */
export function imageUrl(path) {
  if (!images.has(path)) {
    const url = call(path, { cache: "default" })
      .then((response) => response.blob())
      .then((blob) => URL.createObjectURL(blob));
    url.catch(() => images.delete(path)); // a later render may try again
    images.set(path, url);
  }
  return images.get(path);
}

export function jobPath(id, query = "") {
  return `/v1/jobs/${encodeURIComponent(id)}${query}`;
}
