// Shared by the SDK scripts: JSON arguments in, one JSON line out.
//
//   node tests/integration/sdk/<sdk>.mjs '<json args>'
//
// Output (stdout, one line): {"ok": true, ...result} or
// {"ok": false, "error": {"name", "status", "message", "type", "code", "body"}}.
// Exit status 0 in both cases (the JSON tells); 2 for a usage error of the script.

export function args() {
  const raw = process.argv[2];
  if (!raw) {
    process.stderr.write('usage: node SCRIPT.mjs \'{"base_url": ..., "token": ..., "op": ...}\'\n');
    process.exit(2);
  }
  const a = JSON.parse(raw);
  a.prompt ??= 'Say hello.';
  a.timeout_ms ??= 20000;
  a.headers ??= {};
  if (a.task) a.headers['x-task-id'] = a.task;
  if (a.agent) a.headers['x-agent-id'] = a.agent;
  return a;
}

export function done(result) {
  process.stdout.write(JSON.stringify({ ok: true, ...result }) + '\n');
  process.exit(0);
}

// Whatever the SDK raised, as plain data.
export function fail(e) {
  let body = e?.error ?? undefined;
  if (body === undefined && typeof e?.message === 'string') {
    // @google/genai: ApiError.message is the JSON error body
    try { body = JSON.parse(e.message); } catch { /* not JSON */ }
  }
  const out = {
    name: e?.constructor?.name ?? typeof e,
    status: e?.status ?? null,
    message: String(e?.message ?? e),
    type: e?.type ?? e?.error?.type ?? e?.error?.error?.type ?? null,
    code: e?.code ?? null,
    body: body ?? null,
    cause: e?.cause ? String(e.cause?.code ?? e.cause?.message ?? e.cause) : null,
  };
  process.stdout.write(JSON.stringify({ ok: false, error: out }) + '\n');
  process.exit(0);
}

export async function main(fn) {
  try {
    done(await fn());
  } catch (e) {
    fail(e);
  }
}
