"""The HTTP gateway (`llmmesh-gateway`): an OpenAI-compatible API (`/v1/chat/completions`,
`/v1/models`, `/v1/embeddings`) and an Ollama-compatible one (`/api/chat`, `/api/generate`,
`/api/embed`, `/api/tags`, …) over the inference service's gRPC contract, the patterns as an MCP
server (`/mcp`), and the browser playground (`/playground`) that calls the mesh's REST routes.
Envoy's ingress routes all of them here.

- `openai_request` / `ollama_request`: request JSON -> inference protobuf (typed readers in
  `json_fields`); `openai_response` / `ollama_response`: protobuf -> each API's response shapes.
- `errors`: gRPC statuses -> `ApiError` with the matching HTTP status, rendered in each API's shape.
- `openai_api`, `ollama_api`: the thin handlers; `chat_stream`: one inference stream relayed as SSE
  or NDJSON (each API's `Framer`).
- `mcp_server`: the MCP server (the `mcp` SDK's ASGI transport served through `asgi`);
  `pattern_tools`: the patterns as tools, from their descriptors.
- `upstream`: the gRPC channels and per-call options (API key, request id, deadline).
- `playground`: the static page (`static/`); `metrics`: Prometheus series.
- `app`: `create_app(settings)`; `main`: the process entry point.
"""
