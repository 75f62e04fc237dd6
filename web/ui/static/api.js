// The HTTP API client of the page (API.md): JSON in and out, problem+json
// errors turned into ApiError, and the anonymous session kept in
// localStorage so that a reload keeps the buyer's reservations.

const sessionKey = 'boxoffice.session';
// A session this close to its expiry is replaced before use.
const sessionMarginMs = 60_000;

// ApiError is a failed request: status 0 for a network failure, else the
// HTTP status with the problem document's code, title and detail.
export class ApiError extends Error {
  constructor(status, problem, retryAfterSeconds) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = problem.code || (status === 0 ? 'network' : `http_${status}`);
    this.problem = problem;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

function loadSession() {
  try {
    const s = JSON.parse(localStorage.getItem(sessionKey) || 'null');
    if (s && typeof s.token === 'string' && typeof s.expiresAt === 'string') return s;
  } catch {
    // A damaged entry is replaced by a new session when one is needed.
  }
  return null;
}

export class Api {
  constructor() {
    this.session = loadSession();
    this.sessionPromise = null;
    // Server clock minus ours, from the Date header, when they differ by
    // more than its one-second resolution can explain.
    this.skewMs = 0;
  }

  // now is the server's idea of the current time in milliseconds.
  now() { return Date.now() + this.skewMs; }

  hasSession() {
    return this.session !== null && Date.parse(this.session.expiresAt) - sessionMarginMs > this.now();
  }

  // ensureSession returns a valid session, creating one (POST /v1/sessions)
  // when there is none or it is about to expire.
  async ensureSession() {
    if (this.hasSession()) return this.session;
    if (!this.sessionPromise) {
      this.sessionPromise = (async () => {
        const s = await this.request('POST', '/v1/sessions', { anonymous: true });
        this.session = { token: s.token, customerId: s.customerId, expiresAt: s.expiresAt };
        try {
          localStorage.setItem(sessionKey, JSON.stringify(this.session));
        } catch {
          // Private mode without storage: the session lasts as long as the page.
        }
        return this.session;
      })().finally(() => { this.sessionPromise = null; });
    }
    return this.sessionPromise;
  }

  dropSession() {
    this.session = null;
    try { localStorage.removeItem(sessionKey); } catch { /* nothing stored */ }
  }

  // request sends one API call and returns the decoded JSON body (null for
  // 204 and 304). Options: body (sent as JSON), auth (a session is created if
  // needed), anonymous (never send the token), headers, signal, raw (return
  // the Response instead of decoding it; errors still throw).
  async request(method, path, opts = {}) {
    const headers = { Accept: 'application/json', ...(opts.headers || {}) };
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    if (!opts.anonymous) {
      // The token rides along on public reads too: rate limits then count
      // per buyer rather than per shared address.
      const session = opts.auth ? await this.ensureSession() : (this.hasSession() ? this.session : null);
      if (session) headers.Authorization = `Bearer ${session.token}`;
    }
    let res;
    try {
      res = await fetch(path, {
        method, headers, cache: 'no-store', signal: opts.signal,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      });
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      throw new ApiError(0, { title: 'Network error', detail: 'The server cannot be reached. Check your connection and try again.' });
    }
    this.noteDate(res);
    if (res.status === 401 && opts.auth && !opts.retried) {
      // The stored session is no longer accepted (for example the server's
      // data was reset): start a new one and try once more.
      this.dropSession();
      return this.request(method, path, { ...opts, retried: true });
    }
    if (!res.ok && res.status !== 304) {
      let problem = {};
      try { problem = await res.json(); } catch { /* not JSON: keep the status */ }
      const retryAfter = Number.parseInt(res.headers.get('Retry-After') || '', 10);
      throw new ApiError(res.status, problem, Number.isFinite(retryAfter) ? retryAfter : undefined);
    }
    if (opts.raw) return res;
    if (res.status === 204 || res.status === 304) return null;
    return res.json();
  }

  noteDate(res) {
    const date = Date.parse(res.headers.get('Date') || '');
    if (!Number.isFinite(date)) return;
    const skew = date - Date.now();
    this.skewMs = Math.abs(skew) > 2000 ? skew : 0;
  }
}

// idempotencyKey names one buyer action, so a retry of it is answered with
// the first response instead of acting twice.
export function idempotencyKey() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}
