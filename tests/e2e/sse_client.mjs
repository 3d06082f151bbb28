// A real EventSource client (npm `eventsource` 3.x, WHATWG-compliant, on Node's fetch)
// following one deployment's log stream. It lets the library do every reconnect itself
// (`retry:`, `Last-Event-ID`) and prints JSON of what it saw: each request with the
// Last-Event-ID it carried and the answer's status, the `open` events, every frame.
//
//   node tests/e2e/sse_client.mjs <stream URL> <API key> [--until-closed] [--timeout-ms N]
//
// It stops on the `done` frame, or with --until-closed keeps going until the server's
// 204 makes EventSource close for good.
import { EventSource } from "eventsource";

const [url, apiKey, ...rest] = process.argv.slice(2);
if (!url || !apiKey) {
  console.error("usage: sse_client.mjs <stream URL> <API key> [--until-closed] [--timeout-ms N]");
  process.exit(2);
}
const untilClosed = rest.includes("--until-closed");
const timeoutIndex = rest.indexOf("--timeout-ms");
const timeoutMs = timeoutIndex >= 0 ? Number(rest[timeoutIndex + 1]) : 120000;

const seen = {
  requests: [], // {last_event_id, status}
  opens: 0,
  logs: [], // {seq, id, phase, message}
  statuses: [],
  done: null,
  errors: [], // {code, message, ready_state}
  closed_by: null, // "done" | "204" | "timeout"
};

const es = new EventSource(url, {
  fetch: async (input, init) => {
    const request = { last_event_id: init.headers["Last-Event-ID"] ?? null, status: null };
    seen.requests.push(request);
    const response = await fetch(input, {
      ...init,
      headers: { ...init.headers, Authorization: `Bearer ${apiKey}` },
    });
    request.status = response.status;
    return response;
  },
});

function finish(reason) {
  if (seen.closed_by) return;
  seen.closed_by = reason;
  es.close();
  clearTimeout(timer);
  process.stdout.write(`${JSON.stringify(seen)}\n`);
}

const timer = setTimeout(() => finish("timeout"), timeoutMs);

es.addEventListener("open", () => {
  seen.opens += 1;
});

es.addEventListener("message", (event) => {
  const frame = JSON.parse(event.data);
  if (frame.type === "log") {
    seen.logs.push({
      seq: frame.seq,
      id: event.lastEventId,
      phase: frame.phase,
      message: frame.message,
    });
  } else if (frame.type === "status") {
    seen.statuses.push(frame.status);
  } else if (frame.type === "done") {
    seen.done = frame.status;
    if (!untilClosed) finish("done");
  }
});

es.addEventListener("error", (event) => {
  seen.errors.push({ code: event.code ?? null, message: event.message ?? null, ready_state: es.readyState });
  if (es.readyState === EventSource.CLOSED) finish(event.code === 204 ? "204" : "error");
});
