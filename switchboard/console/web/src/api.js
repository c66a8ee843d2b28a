// The console's one way to the API: the signed-in user's token on every request, errors as Chinese messages
// naming the field, a 401 signing the page out.
const TOKEN = "token";

export const session = {
  get token() { return sessionStorage.getItem(TOKEN); },
  set token(value) { if (value) sessionStorage.setItem(TOKEN, value); else sessionStorage.removeItem(TOKEN); },
};

export class ApiError extends Error {
  constructor(body, status) {
    super(body.message + (body.field ? `（${body.field}）` : ""));
    this.status = status;
    this.field = body.field;
  }
}

export async function api(path, { method = "GET", body } = {}) {
  const response = await fetch(path, {
    method,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${session.token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    session.token = null;
    location.reload();
  }
  const data = response.status === 204 ? {} : await response.json();
  if (!response.ok) throw new ApiError(data, response.status);
  return data;
}

export async function signIn(username, password) {
  const response = await fetch("/api/v1/auth/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  const data = await response.json();
  if (!response.ok) throw new ApiError(data, response.status);
  session.token = data.access_token;
}

export async function signOut() {
  await api("/api/v1/auth/logout", { method: "POST" }).catch(() => {});
  session.token = null;
}

/** Domain events as they happen; reconnects after a drop and tells `onEvent` about each. */
export function listen(onEvent, onState) {
  let closed = false;
  let socket = null;
  const open = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/api/v1/events?token=${encodeURIComponent(session.token)}`);
    socket.onopen = () => onState(true);
    socket.onmessage = (message) => onEvent(JSON.parse(message.data));
    socket.onclose = () => { onState(false); if (!closed) setTimeout(open, 3000); };
  };
  open();
  return () => { closed = true; socket.close(); };
}
