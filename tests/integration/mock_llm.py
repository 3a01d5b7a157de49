"""
Mock LLM providers for the gateway integration tests (doc/gateway.md).

One TLS listener per label ("main", "eu", ... each a ThreadingHTTPServer, HTTP/1.1
with keep-alive) on 127.0.0.1 speaks the public wire formats of:

  OpenAI      POST /v1/chat/completions  (JSON; SSE `data: {...}` chunks, `data: [DONE]`,
                                          the usage-only chunk `"choices": []` only when
                                          stream_options.include_usage is true; then every
                                          other chunk carries "usage": null)
              POST /v1/responses         (JSON; SSE `event: response.created` ...
                                          `response.output_text.delta` ... `response.completed`)
              POST /v1/embeddings        (float or base64 vectors, as encoding_format asks)
  Azure       POST /openai/deployments/{d}/chat/completions|embeddings?api-version=...,
              POST /openai/v1/chat/completions (key in `api-key`)
  Anthropic   POST /v1/messages          (JSON; SSE message_start ... message_stop; needs
                                          anthropic-version and max_tokens like the real API)
              POST /v1/messages/count_tokens
  Gemini      POST /v1beta/models/{m}:generateContent
              POST /v1beta/models/{m}:streamGenerateContent[?alt=sse]  (SSE events end in
                                          CRLF CRLF as Google's do; without alt=sse a JSON array)
  Groq        POST /openai/v1/chat/completions  (usage only as x_groq.usage in the last chunk)
  Mistral     POST /v1/chat/completions, /v1/embeddings  (usage in the last content chunk,
                                          always; stream_options is ignored)

The vendor is recognised by the key it is called with, as the real services do:
Authorization: Bearer KEYS[openai|mistral|groq], api-key: KEYS[azure], x-api-key (or,
as @anthropic-ai/sdk 1.x sends it, Authorization: Bearer) KEYS[anthropic],
x-goog-api-key: KEYS[gemini].  An unknown or missing key is a 401 in
that API's error shape (so a test that gets the mock's figures proves that the gateway
injected the right provider key in the right header).

Each vendor/API answers with fixed token figures (FIGURES) and a fixed text (TEXT),
and USAGE gives the normalised figures the gateway's audit record must show
(src/llm/usage.h).  Every request is recorded (MockLLM.requests): listener, method,
path, headers, raw body, parsed JSON, vendor, fault, whether the response completed,
whether the peer closed the connection early, how many events and output-text bytes
it sent (record["events_sent"], record["text_sent"]).

Faults (per request; `mock.fault = "..."` forces one for every request, else a model
name containing "fault-NAME" selects it, e.g. "gpt-4o-fault-stall"):
  reset       read the request, then RST (no response byte)
  reset_mid   send the head and a part of the body/stream, then RST
  close       read the request, then close (FIN, no response byte)
  stall       read the request, never answer (until the peer closes; bounded)
  stall_mid   head and the first events of a stream, then silence (bounded)
  garbage     non-HTTP bytes, then close
  slow        a stream of mock.slow_events events, mock.slow_delay s apart; stops as soon
              as the peer is gone (record["closed_early"] = True)
  500         HTTP 500 in the vendor's error shape (also 429 and 503)
A listener can also be made untrusted (a certificate from another CA) for TLS tests.

Loopback only; every wait is bounded.  Standard library only.

Stand-alone: `python3 tests/integration/mock_llm.py [--port N]` serves until ^C and
prints the CA file to trust (NODE_EXTRA_CA_CERTS / curl --cacert).
"""

import base64
import json
import re
import select
import socket
import ssl
import struct
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# --------------------------------------------------------------------------- fixed data

KEYS = {
    "openai": "sk-mock-openai-key-7f3a9c",
    "azure": "mock-azure-key-19c2d4",
    "anthropic": "sk-ant-mock-key-5d1e22",
    "gemini": "AIzaMockGeminiKey-0042ab",
    "mistral": "mock-mistral-key-88b0ee",
    "groq": "gsk_mock_groq_key_61aa7d",
}

TEXT = {
    "openai": "Hello from the mock OpenAI chat.",
    "azure": "Hello from the mock Azure OpenAI.",
    "responses": "Hello from the mock Responses API.",
    "anthropic": "Hello from the mock Claude.",
    "gemini": "Hello from the mock Gemini.",
    "mistral": "Hello from the mock Mistral.",
    "groq": "Hello from the mock Groq.",
}

# The provider's own figures, as sent on the wire.
FIGURES = {
    "openai": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18,
               "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0},
               "completion_tokens_details": {"reasoning_tokens": 2, "audio_tokens": 0,
                                             "accepted_prediction_tokens": 0,
                                             "rejected_prediction_tokens": 0}},
    "azure": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18,
              "prompt_tokens_details": {"cached_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0}},
    "responses": {"input_tokens": 21, "input_tokens_details": {"cached_tokens": 5},
                  "output_tokens": 9, "output_tokens_details": {"reasoning_tokens": 4},
                  "total_tokens": 30},
    "embeddings": {"prompt_tokens": 6, "total_tokens": 6},
    "anthropic": {"input_tokens": 13, "cache_creation_input_tokens": 4,
                  "cache_read_input_tokens": 6, "output_tokens": 17},
    "count_tokens": {"input_tokens": 42},
    "gemini": {"promptTokenCount": 15, "cachedContentTokenCount": 5, "candidatesTokenCount": 8,
               "thoughtsTokenCount": 3, "totalTokenCount": 26},
    "mistral": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14},
    "groq": {"prompt_tokens": 31, "completion_tokens": 12, "total_tokens": 43},
}


def _u(input, output, cache_read=0, cache_write=0, reasoning=0, total=None):
    return {"input": input, "output": output, "cache_read": cache_read,
            "cache_write": cache_write, "reasoning": reasoning,
            "total": input + output if total is None else total, "estimated": False}


# What the gateway's audit "usage" must say (normalised as src/llm/usage.h says).
USAGE = {
    "openai": _u(11, 7, cache_read=3, reasoning=2, total=18),
    "azure": _u(12, 6, total=18),
    "responses": _u(21, 9, cache_read=5, reasoning=4, total=30),
    "embeddings": _u(6, 0, total=6),
    # Anthropic: input_tokens excludes the cache: 13 + 4 + 6
    "anthropic": _u(23, 17, cache_read=6, cache_write=4),
    # Gemini: output = candidates + thoughts
    "gemini": _u(15, 11, cache_read=5, reasoning=3, total=26),
    "mistral": _u(9, 5, total=14),
    "groq": _u(31, 12, total=43),
}

# Deltas of a "slow" stream: 4 bytes each, so the gateway's estimate
# ceil(bytes / 4) is the number of deltas it relayed.
SLOW_DELTA = "tok "

OPENAI_LIKE = ("openai", "azure", "mistral", "groq")


def chunks_of(text, n=3):
    """The text in n pieces (deterministic), for streaming."""
    k = max(1, -(-len(text) // n))
    return [text[i:i + k] for i in range(0, len(text), k)]


def error_body(fmt, status, message):
    """A provider error in its own shape (fmt: openai | anthropic | gemini)."""
    if fmt == "anthropic":
        t = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
             404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
             529: "overloaded_error"}.get(status, "api_error")
        return {"type": "error", "error": {"type": t, "message": message}}
    if fmt == "gemini":
        s = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
             404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}.get(status, "INTERNAL")
        return {"error": {"code": status, "message": message, "status": s}}
    t = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
         429: "rate_limit_exceeded"}.get(status, "server_error")
    code = {401: "invalid_api_key", 404: "unknown_url"}.get(status)
    return {"error": {"message": message, "type": t, "param": None, "code": code}}


def parse_sse(data: bytes):
    """[(event or None, data str)] from an SSE byte stream (LF, CRLF or CR line ends)."""
    out = []
    text = data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    for block in text.split("\n\n"):
        ev, datas = None, []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            k, _, v = line.partition(":")
            if v.startswith(" "):
                v = v[1:]
            if k == "event":
                ev = v
            elif k == "data":
                datas.append(v)
        if datas:
            out.append((ev, "\n".join(datas)))
    return out


# --------------------------------------------------------------------------- handler


class _PeerGone(Exception):
    """The client (the gateway) closed the connection while we were answering."""


class _Stop(Exception):
    """The response was cut on purpose (a fault): not a client close."""


class MockHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-llm/1"
    sys_version = ""
    timeout = 30  # an idle keep-alive connection is closed after 30 s
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (_PeerGone, ConnectionError, socket.timeout, ssl.SSLError, OSError):
            self.close_connection = True

    # ---- reading

    def _read_body(self) -> bytes:
        te = ",".join(self.headers.get_all("Transfer-Encoding") or []).lower()
        out = bytearray()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("eof in chunk size")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                d = self.rfile.read(size)
                if len(d) != size:
                    raise ConnectionError("eof in chunk")
                out += d
                self.rfile.readline(8)
        else:
            n = int(self.headers.get("Content-Length") or 0)
            if n > 64 << 20:
                raise ConnectionError("body too large for the mock")
            if n:
                d = self.rfile.read(n)
                if len(d) != n:
                    raise ConnectionError("eof in body")
                out += d
        return bytes(out)

    # ---- writing

    def _json(self, status, obj, extra=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _error(self, fmt, status, message):
        self._json(status, error_body(fmt, status, message))

    def _stream_head(self, ctype="text/event-stream; charset=utf-8", extra=()):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.flush()

    def _chunk(self, data: bytes):
        """One HTTP chunk; raises _PeerGone when the peer has closed."""
        if self._peer_closed():
            raise _PeerGone()
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        except (OSError, ssl.SSLError) as e:
            raise _PeerGone() from e
        self.rec["events_sent"] += 1

    def _end_chunks(self):
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (OSError, ssl.SSLError) as e:
            raise _PeerGone() from e

    def _peer_closed(self) -> bool:
        """The client sends nothing while a response is in flight, so a readable
        socket means EOF, close_notify or RST."""
        conn = self.connection
        try:
            if isinstance(conn, ssl.SSLSocket) and conn.pending():
                return False
            r, _, _ = select.select([conn], [], [], 0)
            if not r:
                return False
            conn.settimeout(0.05)
            try:
                d = conn.recv(1)
            except (ssl.SSLWantReadError, socket.timeout, BlockingIOError):
                return False
            finally:
                conn.settimeout(self.timeout)
            return d == b""
        except (OSError, ValueError, ssl.SSLError):
            return True

    def _wait_peer_close(self, limit: float) -> bool:
        """Hold the connection without answering until the peer closes (True) or
        `limit` seconds pass (False)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self._peer_closed():
                return True
            time.sleep(0.02)
        return False

    def _rst(self):
        """End the connection with an RST when the handler returns (SO_LINGER 0; Python
        closes a TLS socket without close_notify)."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True

    # ---- dispatch

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _dispatch(self):
        srv = self.server
        mock = srv.mock
        rec = {
            "listener": srv.label,
            "method": self.command,
            "path": self.path,
            "headers": list(self.headers.items()),
            "body": b"",
            "json": None,
            "json_error": None,
            "vendor": None,
            "api": None,
            "model": None,
            "stream": False,
            "fault": None,
            "status": None,
            "events_sent": 0,
            "text_sent": 0,
            "complete": False,
            "closed_early": None,
            "time": time.time(),
            "conn": id(self.connection),
        }
        self.rec = rec
        mock._record(rec)
        try:
            rec["body"] = self._read_body()
            try:
                rec["json"] = json.loads(rec["body"]) if rec["body"] else None
            except ValueError as e:
                rec["json_error"] = str(e)
            self._serve(rec)
            if rec["closed_early"] is None:
                rec["closed_early"] = False
            rec["complete"] = True
        except _PeerGone:
            rec["closed_early"] = True
            self.close_connection = True
        except _Stop:
            self.close_connection = True

    def _serve(self, rec):
        mock = self.server.mock
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query = dict(urllib.parse.parse_qsl(url.query))
        for pre in mock.base_prefixes:
            if path.startswith(pre + "/"):
                path = path[len(pre):]
                break
        rec["api_path"] = path
        fmt = ("anthropic" if path.startswith("/v1/messages")
               else "gemini" if path.startswith(("/v1beta/", "/v1/models/")) else "openai")
        vendor = self._vendor()
        rec["vendor"] = vendor
        if vendor is None:
            rec["status"] = 401
            return self._error(fmt, 401, "mock: missing or invalid API key")
        if self.command != "POST":
            rec["status"] = 405
            return self._error(fmt, 405, "mock: method not allowed")

        # which API
        api = None
        url_model = None
        if vendor in ("openai", "mistral") and path == "/v1/chat/completions":
            api = "chat"
        elif vendor == "groq" and path == "/openai/v1/chat/completions":
            api = "chat"
        elif vendor == "openai" and path == "/v1/responses":
            api = "responses"
        elif vendor in ("openai", "mistral") and path == "/v1/embeddings":
            api = "embeddings"
        elif vendor == "azure":
            m = re.fullmatch(r"/openai/deployments/([A-Za-z0-9._-]+)/(chat/completions|embeddings)", path)
            if m and "api-version" in query:
                api = "chat" if m.group(2) == "chat/completions" else "embeddings"
                url_model = m.group(1)
            elif path == "/openai/v1/chat/completions":
                api = "chat"
        elif vendor == "anthropic" and path == "/v1/messages":
            api = "messages"
        elif vendor == "anthropic" and path == "/v1/messages/count_tokens":
            api = "count_tokens"
        elif vendor == "gemini":
            m = re.fullmatch(r"/(v1beta|v1)/models/([A-Za-z0-9._-]+):(generateContent|streamGenerateContent)", path)
            if m:
                api = "generate" if m.group(3) == "generateContent" else "stream_generate"
                url_model = m.group(2)
        rec["api"] = api
        if api is None:
            rec["status"] = 404
            return self._error(fmt, 404, f"mock: {vendor} has no endpoint {path}")

        body = rec["json"]
        if rec["json_error"] is not None or not isinstance(body, dict):
            rec["status"] = 400
            return self._error(fmt, 400, "mock: the body is not a JSON object")
        model = url_model or body.get("model")
        rec["model"] = model
        if vendor == "anthropic" and not self.headers.get("anthropic-version"):
            rec["status"] = 400
            return self._error(fmt, 400, "anthropic-version: header is required")
        if not isinstance(model, str) or not model:
            rec["status"] = 400
            return self._error(fmt, 400, "mock: model is required")
        if api == "chat" and not isinstance(body.get("messages"), list):
            rec["status"] = 400
            return self._error(fmt, 400, "mock: messages must be an array")
        if api in ("messages", "count_tokens") and not isinstance(body.get("messages"), list):
            rec["status"] = 400
            return self._error(fmt, 400, "messages: Field required")
        if api == "messages" and not isinstance(body.get("max_tokens"), int):
            rec["status"] = 400
            return self._error(fmt, 400, "max_tokens: Field required")
        if api in ("generate", "stream_generate") and not isinstance(body.get("contents"), list):
            rec["status"] = 400
            return self._error(fmt, 400, "* GenerateContentRequest.contents: contents is not specified")

        stream = bool(body.get("stream")) if api in ("chat", "responses", "messages") else (
            api == "stream_generate")
        rec["stream"] = stream

        fault = mock.fault
        if fault is None:
            m = re.search(r"fault-([a-z0-9_]+)", model)
            fault = m.group(1) if m else None
        rec["fault"] = fault
        if fault in ("reset", "close", "garbage", "stall"):
            if fault == "reset":
                return self._rst()
            if fault == "close":
                self.close_connection = True
                return None
            if fault == "garbage":
                try:
                    self.wfile.write(b"\x16\x03\x01 this is not HTTP at all \x00\xff\r\n\r\n")
                    self.wfile.flush()
                except OSError:
                    pass
                self.close_connection = True
                return None
            rec["closed_early"] = self._wait_peer_close(mock.stall_limit)
            self.close_connection = True
            return None
        if fault in ("500", "429", "503"):
            st = int(fault)
            rec["status"] = st
            msg = {500: "The server had an error while processing your request.",
                   429: "Rate limit reached (mock).", 503: "The model is overloaded (mock)."}[st]
            return self._error(fmt, st, msg)

        rec["status"] = 200
        self.fault = fault
        handler = {
            "chat": self._chat, "responses": self._responses, "embeddings": self._embeddings,
            "messages": self._messages, "count_tokens": self._count_tokens,
            "generate": self._gemini, "stream_generate": self._gemini,
        }[api]
        return handler(vendor, model, body, stream, query)

    def _vendor(self):
        h = self.headers
        auth = h.get("Authorization") or ""
        if h.get("api-key") == KEYS["azure"]:
            return "azure"
        if h.get("x-api-key") == KEYS["anthropic"]:
            return "anthropic"
        if h.get("x-goog-api-key") == KEYS["gemini"]:
            return "gemini"
        if auth.startswith("Bearer "):
            tok = auth[7:].strip()
            # the Anthropic SDK (1.x) sends its API key as a Bearer token too
            for v in ("openai", "mistral", "groq", "anthropic"):
                if tok == KEYS[v]:
                    return v
        return None

    # ---- the stream's pacing and faults

    def _events(self, events, sep=b"\n\n", texts=None):
        """Send SSE events (each a bytes payload without its separator), applying the
        slow / reset_mid / stall_mid faults.  texts: the output text of each event
        (summed into record["text_sent"], the UTF-8 bytes an estimate can count)."""
        mock = self.server.mock
        for i, ev in enumerate(events):
            if self.fault == "reset_mid" and i == 2:
                return self._rst_mid()
            if self.fault == "stall_mid" and i == 2:
                self.rec["closed_early"] = self._wait_peer_close(mock.stall_limit)
                raise _Stop()
            self._chunk(ev + sep)
            if texts:
                self.rec["text_sent"] += len(texts[i].encode())
            if self.fault == "slow":
                time.sleep(mock.slow_delay)
        self._end_chunks()

    def _rst_mid(self):
        self._rst()
        raise _Stop()

    def _slow_n(self):
        return self.server.mock.slow_events if self.fault == "slow" else 0

    # ---- OpenAI-compatible chat

    def _chat(self, vendor, model, body, stream, query):
        fig = FIGURES[vendor]
        text = TEXT[vendor]
        cid = f"chatcmpl-mock{int(time.time() * 1000) % 10**9}"
        created = int(time.time())
        rid = [("x-request-id", f"req_mock_{vendor}")]
        if not stream:
            resp = {
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text,
                                                     "refusal": None, "annotations": []},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": fig, "service_tier": "default", "system_fingerprint": "fp_mock",
            }
            if vendor == "groq":
                resp["x_groq"] = {"id": "req_mock_groq"}
            if self.fault == "reset_mid":
                data = json.dumps(resp).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                return self._rst_mid()
            if self.fault == "slow":
                time.sleep(self.server.mock.slow_delay * 3)
            return self._json(200, resp, rid)

        so = body.get("stream_options")
        include_usage = isinstance(so, dict) and so.get("include_usage") is True
        openai_usage_chunk = include_usage and vendor in ("openai", "azure")

        def chunk(delta, finish=None, **extra):
            c = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                 "system_fingerprint": "fp_mock",
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            if openai_usage_chunk:
                c["usage"] = None
            c.update(extra)
            return b"data: " + json.dumps(c).encode()

        pieces = chunks_of(text) + [SLOW_DELTA] * self._slow_n()
        evs = [chunk({"role": "assistant", "content": ""})]
        evs += [chunk({"content": p}) for p in pieces]
        texts = [""] + pieces
        if vendor == "mistral":
            evs.append(chunk({"content": ""}, "stop", usage=fig))
        elif vendor == "groq":
            evs.append(chunk({}, "stop", x_groq={"id": "req_mock_groq", "usage": dict(
                fig, queue_time=0.01, prompt_time=0.002, completion_time=0.01, total_time=0.022)}))
        else:
            evs.append(chunk({}, "stop"))
        if openai_usage_chunk:
            u = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                 "system_fingerprint": "fp_mock", "choices": [], "usage": fig}
            evs.append(b"data: " + json.dumps(u).encode())
        evs.append(b"data: [DONE]")
        texts += [""] * (len(evs) - len(texts))
        self._stream_head(extra=rid)
        self._events(evs, texts=texts)

    # ---- OpenAI Responses

    def _responses(self, vendor, model, body, stream, query):
        text = TEXT["responses"]
        rid, mid = "resp_mock0001", "msg_mock0001"
        created = int(time.time())
        base = {
            "id": rid, "object": "response", "created_at": created, "status": "in_progress",
            "background": False, "error": None, "incomplete_details": None,
            "instructions": body.get("instructions"), "max_output_tokens": None, "model": model,
            "output": [], "parallel_tool_calls": True, "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None}, "store": True, "temperature": 1.0,
            "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [],
            "top_p": 1.0, "truncation": "disabled", "usage": None, "user": None, "metadata": {},
        }
        done_item = {"id": mid, "type": "message", "status": "completed", "role": "assistant",
                     "content": [{"type": "output_text", "text": text, "annotations": [],
                                  "logprobs": []}]}
        final = dict(base, status="completed", output=[done_item], usage=FIGURES["responses"])
        if not stream:
            return self._json(200, final)
        seq = [0]

        def ev(name, **data):
            d = {"type": name, "sequence_number": seq[0]}
            d.update(data)
            seq[0] += 1
            return b"event: " + name.encode() + b"\ndata: " + json.dumps(d).encode()

        pieces = chunks_of(text) + [SLOW_DELTA] * self._slow_n()
        evs = [ev("response.created", response=base), ev("response.in_progress", response=base),
               ev("response.output_item.added", output_index=0,
                  item={"id": mid, "type": "message", "status": "in_progress",
                        "role": "assistant", "content": []}),
               ev("response.content_part.added", item_id=mid, output_index=0, content_index=0,
                  part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})]
        evs += [ev("response.output_text.delta", item_id=mid, output_index=0, content_index=0,
                   delta=p, logprobs=[]) for p in pieces]
        texts = [""] * 4 + pieces
        evs += [ev("response.output_text.done", item_id=mid, output_index=0, content_index=0,
                   text=text, logprobs=[]),
                ev("response.content_part.done", item_id=mid, output_index=0, content_index=0,
                   part=done_item["content"][0]),
                ev("response.output_item.done", output_index=0, item=done_item),
                ev("response.completed", response=final)]
        texts += [""] * (len(evs) - len(texts))
        self._stream_head()
        self._events(evs, texts=texts)

    # ---- embeddings

    def _embeddings(self, vendor, model, body, stream, query):
        inp = body.get("input")
        n = len(inp) if isinstance(inp, list) and inp and not isinstance(inp[0], int) else 1
        fmt = body.get("encoding_format") or "float"
        data = []
        for i in range(n):
            vec = [round(0.125 * (j + 1) * (1 if (i + j) % 2 == 0 else -1), 6) for j in range(8)]
            emb = (base64.b64encode(struct.pack("<%df" % len(vec), *vec)).decode()
                   if fmt == "base64" else vec)
            data.append({"object": "embedding", "index": i, "embedding": emb})
        self._json(200, {"object": "list", "data": data, "model": model,
                         "usage": FIGURES["embeddings"]})

    # ---- Anthropic

    def _messages(self, vendor, model, body, stream, query):
        fig = FIGURES["anthropic"]
        text = TEXT["anthropic"]
        mid = "msg_mock01"
        if not stream:
            return self._json(200, {
                "id": mid, "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                "stop_sequence": None, "usage": dict(fig, service_tier="standard")},
                [("request-id", "req_mock_anthropic")])

        def ev(name, **data):
            d = {"type": name}
            d.update(data)
            return b"event: " + name.encode() + b"\ndata: " + json.dumps(d).encode()

        start_usage = dict(fig, output_tokens=1, service_tier="standard")
        pieces = chunks_of(text) + [SLOW_DELTA] * self._slow_n()
        evs = [ev("message_start", message={
            "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": start_usage}),
            ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
            ev("ping")]
        evs += [ev("content_block_delta", index=0, delta={"type": "text_delta", "text": p})
                for p in pieces]
        texts = [""] * 3 + pieces
        evs += [ev("content_block_stop", index=0),
                ev("message_delta", delta={"stop_reason": "end_turn", "stop_sequence": None},
                   usage={"output_tokens": fig["output_tokens"]}),
                ev("message_stop")]
        texts += [""] * (len(evs) - len(texts))
        self._stream_head(extra=[("request-id", "req_mock_anthropic")])
        self._events(evs, texts=texts)

    def _count_tokens(self, vendor, model, body, stream, query):
        self._json(200, FIGURES["count_tokens"])

    # ---- Gemini

    def _gemini(self, vendor, model, body, stream, query):
        fig = FIGURES["gemini"]
        text = TEXT["gemini"]
        details = [{"modality": "TEXT", "tokenCount": fig["promptTokenCount"]}]

        def resp(parts_text, finish=None, final=False):
            cand = {"content": {"parts": [{"text": parts_text}], "role": "model"}, "index": 0}
            if finish:
                cand["finishReason"] = finish
            if final:
                um = dict(fig, promptTokensDetails=details)
            else:  # early chunks: the prompt side only (cumulative figures)
                um = {"promptTokenCount": fig["promptTokenCount"],
                      "cachedContentTokenCount": fig["cachedContentTokenCount"],
                      "totalTokenCount": fig["promptTokenCount"], "promptTokensDetails": details}
            return {"candidates": [cand], "usageMetadata": um, "modelVersion": model,
                    "responseId": "mockResponseId01"}

        if not stream:
            return self._json(200, resp(text, "STOP", True))
        pieces = chunks_of(text) + [SLOW_DELTA] * self._slow_n()
        objs = [resp(p) for p in pieces[:-1]] + [resp(pieces[-1], "STOP", True)]
        if query.get("alt") == "sse":
            self._stream_head()
            self._events([b"data: " + json.dumps(o).encode() for o in objs], sep=b"\r\n\r\n",
                         texts=pieces)
        else:  # a JSON array, streamed element by element
            self._stream_head("application/json; charset=UTF-8")
            evs = [(b"[" if i == 0 else b",\r\n") + json.dumps(o).encode() for i, o in enumerate(objs)]
            evs[-1] += b"]"
            self._events(evs, sep=b"", texts=pieces)


# --------------------------------------------------------------------------- servers


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, mock, label, host, port, ssl_ctx):
        self.mock, self.label, self.ssl_ctx = mock, label, ssl_ctx
        self.connections = 0
        self.tls_errors = []
        super().__init__((host, port), MockHandler)
        self.host, self.port = self.server_address[:2]
        self._thread = threading.Thread(target=self.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def finish_request(self, request, client_address):
        with self.mock.lock:
            self.connections += 1
        if self.ssl_ctx is None:
            request.settimeout(30)
            return super().finish_request(request, client_address)
        request.settimeout(10)
        try:
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            with self.mock.lock:
                self.tls_errors.append(repr(e))
            return None
        try:
            tls.settimeout(30)
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass
        return None

    def close(self):
        self.shutdown()
        self.server_close()


def server_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class MockLLM:
    """The mock providers.  listeners: {label: (cert, key) or None (plain HTTP)}."""

    def __init__(self, listeners, host="127.0.0.1", base_prefixes=("/eu-base",)):
        self.lock = threading.Lock()
        self.requests = []
        self.fault = None
        self.slow_events = 60
        self.slow_delay = 0.1
        self.stall_limit = 20.0
        self.base_prefixes = tuple(base_prefixes)
        self.servers = {}
        for label, tls in listeners.items():
            ctx = server_context(*tls) if tls else None
            self.servers[label] = _Server(self, label, host, 0, ctx)
        self.host = host
        # a port nothing listens on (connect refused)
        with socket.socket() as s:
            s.bind((host, 0))
            self.closed_port = s.getsockname()[1]

    def port(self, label="main") -> int:
        return self.servers[label].port

    def url(self, label="main", base="") -> str:
        scheme = "https" if self.servers[label].ssl_ctx else "http"
        return f"{scheme}://{self.host}:{self.port(label)}{base}"

    # ---- faults
    def reset(self):
        """Back to defaults (call between tests)."""
        self.fault = None
        self.slow_events = 60
        self.slow_delay = 0.1
        self.stall_limit = 20.0

    # ---- records
    def _record(self, rec):
        with self.lock:
            self.requests.append(rec)

    def mark(self) -> int:
        with self.lock:
            return len(self.requests)

    def since(self, mark: int = 0, pred=None) -> list:
        with self.lock:
            out = list(self.requests[mark:])
        return [r for r in out if pred is None or pred(r)]

    def wait(self, pred, mark: int = 0, count: int = 1, timeout: float = 5.0) -> list:
        deadline = time.monotonic() + timeout
        while True:
            got = self.since(mark, pred)
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.02)

    def connections(self, label="main") -> int:
        with self.lock:
            return self.servers[label].connections

    def tls_errors(self, label="main") -> list:
        with self.lock:
            return list(self.servers[label].tls_errors)

    def close(self):
        for s in self.servers.values():
            s.close()


def header(rec, name, default=None):
    for k, v in rec["headers"]:
        if k.lower() == name.lower():
            return v
    return default


def header_all(rec, name):
    return [v for k, v in rec["headers"] if k.lower() == name.lower()]


# --------------------------------------------------------------------------- stand-alone

if __name__ == "__main__":
    import argparse
    import sys
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from conftest import make_test_pki  # noqa: E402

    ap = argparse.ArgumentParser(description="serve the mock LLM providers over TLS")
    ap.add_argument("--dir", default=None, help="where to write the test CA (default: a temp dir)")
    a = ap.parse_args()
    d = Path(a.dir or tempfile.mkdtemp(prefix="mock-llm-"))
    pki = make_test_pki(d)
    m = MockLLM({"main": (pki["cert"], pki["key"])})
    print(json.dumps({"url": m.url(), "ca": pki["ca"], "keys": KEYS}), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        m.close()
