// A worker that polls GET /v1/events/{id}/seats for the live feed's
// fallback. The stadium's map is 6 MB of JSON: fetching and parsing it off
// the main thread keeps panning smooth while the socket is down. The page
// sends {type: 'init', ids} once and then {type: 'poll', seq, url, version,
// token, statuses}; the worker answers {type: 'result', seq, ok, version,
// index, status} with only the seats whose status differs from statuses.

const codes = { available: 0, reserved: 1, booked: 2, blocked: 3 };
let ids = [];

self.onmessage = async ({ data }) => {
  if (data.type === 'init') {
    ids = data.ids;
    return;
  }
  if (data.type !== 'poll') return;
  const reply = { type: 'result', seq: data.seq, ok: false, version: 0, index: null, status: null };
  try {
    const headers = { Accept: 'application/json', 'If-None-Match': `"${data.version}"` };
    if (data.token) headers.Authorization = `Bearer ${data.token}`;
    const res = await fetch(data.url, { headers, cache: 'no-store' });
    reply.ok = res.ok || res.status === 304;
    if (res.status === 200) {
      const body = await res.json();
      reply.version = body.version;
      const known = data.statuses;
      const index = [];
      const status = [];
      let lookup = null;
      body.seats.forEach((s, k) => {
        let i = k;
        if (ids[k] !== s.id) {
          lookup = lookup || new Map(ids.map((id, j) => [id, j]));
          i = lookup.get(s.id);
          if (i === undefined) return;
        }
        const c = codes[s.status] ?? 3; // an unknown status is never for sale
        if (known[i] !== c) {
          index.push(i);
          status.push(c);
        }
      });
      reply.index = Uint32Array.from(index);
      reply.status = Uint8Array.from(status);
    }
  } catch {
    reply.ok = false;
  }
  self.postMessage(reply);
};
