// The REST client: every call the console makes goes through the public
// API with the admin's bearer token, and every refusal is shown with the
// server's own error code and message.

const TOKEN_KEY = "hexdash.console.token";

/** An error answer of the API: `{error: {code, message}}` and its status. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  constructor(token) {
    this.token = token;
  }

  /** The token kept for this tab, if any (cleared when the tab closes). */
  static stored() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    return token ? new Api(token) : null;
  }

  /** Logs in; refuses anyone but an admin (the console's routes are admin-only). */
  static async login(email, password) {
    const session = await request("POST", "/v1/auth/login", null, { email, password });
    const api = new Api(session.access_token);
    const me = await api.get("/v1/me");
    if (me.role !== "admin") {
      throw new ApiError(403, "forbidden", "the console is for dispatchers (admin role)");
    }
    sessionStorage.setItem(TOKEN_KEY, api.token);
    return api;
  }

  logout() {
    sessionStorage.removeItem(TOKEN_KEY);
  }

  get(path) {
    return request("GET", path, this.token);
  }

  post(path, body) {
    return request("POST", path, this.token, body ?? {});
  }

  /** The tracking socket's address for this page's origin. */
  socketUrl() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/v1/ws?token=${encodeURIComponent(this.token)}`;
  }
}

async function request(method, path, token, body) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const e = json?.error ?? {};
    throw new ApiError(response.status, e.code ?? "http_" + response.status, e.message ?? text);
  }
  return json;
}
