// The console's one way to the API: a browser session (the token in an HttpOnly cookie the page never sees), the
// CSRF token on every change, errors as Chinese messages naming the field, a 401 signing the page out.
const CSRF = "csrf";
const SIGNED_IN = "signed-in"; // in localStorage: whether to ask for the session at all (no 401 at each visit)
const SAFE = new Set(["GET", "HEAD"]);

export class ApiError extends Error {
  constructor(body, status) {
    super((body.message || `请求失败（${status}）`) + (body.field ? `（${body.field}）` : ""));
    this.status = status;
    this.field = body.field;
    this.body = body;
  }
}

async function answer(response) {
  const data = response.status === 204 ? {} : await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(data, response.status);
  return data;
}

/** What a state-changing request must carry beside the cookie (X-CSRF-Token). */
export const csrfToken = () => sessionStorage.getItem(CSRF) || "";

let signedOut = () => {};

/** Called once by the app: what to do when the server says the session is over. */
export function onSignedOut(handler) { signedOut = handler; }

export async function api(path, { method = "GET", body, form } = {}) {
  const headers = {};
  if (!SAFE.has(method)) headers["X-CSRF-Token"] = csrfToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: form ?? (body === undefined ? undefined : JSON.stringify(body)),
    credentials: "same-origin",
  });
  if (response.status === 401) {
    forget();
    signedOut();
  }
  return answer(response);
}

function remember(data) {
  sessionStorage.setItem(CSRF, data.csrf_token);
  localStorage.setItem(SIGNED_IN, "1");
  return data;
}

function forget() {
  sessionStorage.removeItem(CSRF);
  localStorage.removeItem(SIGNED_IN);
}

/** The session this browser already has (a reload, a new tab), or null when signed out. */
export async function resume() {
  if (!localStorage.getItem(SIGNED_IN)) return null;
  const response = await fetch("/api/v1/auth/session", { credentials: "same-origin" });
  if (response.status === 401) {
    forget();
    return null;
  }
  return remember(await answer(response));
}

export async function signIn(username, password) {
  const response = await fetch("/api/v1/auth/session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
    credentials: "same-origin",
  });
  return remember(await answer(response));
}

export async function signOut() {
  await api("/api/v1/auth/logout", { method: "POST" }).catch(() => {});
  forget();
}

/** Domain events as they happen, over the session cookie. After a drop it reconnects asking for the events it
 * missed (`since` the last one seen), which arrive first; `onState(true)` tells the caller to reload its lists too
 * (a `catch_up.incomplete` event means the server no longer had them all). */
export function listen(onEvent, onState) {
  let closed = false;
  let socket = null;
  let lastSeq = null;
  const open = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const since = lastSeq === null ? "" : `?since=${lastSeq}`;
    socket = new WebSocket(`${scheme}://${location.host}/api/v1/events${since}`);
    socket.onopen = () => onState(true);
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data);
      lastSeq = event.seq;
      if (event.type !== "catch_up.incomplete") onEvent(event);
    };
    socket.onclose = () => { onState(false); if (!closed) setTimeout(open, 3000); };
  };
  open();
  return () => { closed = true; socket.close(); };
}
