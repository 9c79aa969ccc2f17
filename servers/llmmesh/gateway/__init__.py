"""The HTTP gateway (`llmmesh-gateway`): an OpenAI-compatible API (`/v1/chat/completions`,
`/v1/models`, `/v1/embeddings`) over the inference service's gRPC contract, and the browser
playground (`/playground`) that calls the mesh's REST routes. Envoy's ingress routes both here.

- `openai_request`: OpenAI request JSON -> inference protobuf; `openai_response`: protobuf ->
  OpenAI's response shapes.
- `errors`: gRPC statuses -> OpenAI error bodies with the matching HTTP status.
- `openai_api`: the thin /v1 handlers; `chat_stream`: one Chat turn as `chat.completion.chunk` SSE.
- `upstream`: the inference channel and per-call options (API key, request id, deadline).
- `playground`: the static page (`static/`); `metrics`: Prometheus series.
- `app`: `create_app(settings)`; `main`: the process entry point.
"""
