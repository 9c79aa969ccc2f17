"""Tools a model may call, shared by the tool-use and plan-and-execute patterns.

Built-ins (calculator, clock, http_get), every unary method of the gRPC servers named in
`limits.grpc_tool_targets` (discovered through server reflection), and the tools of the MCP
servers in `limits.mcp_servers` (named `<server>.<tool>`). `ToolRegistry` validates a
call's arguments against the tool's JSON schema, bounds its time and output size, and turns
every failure into a tool error result: a tool never crashes a run.
"""
