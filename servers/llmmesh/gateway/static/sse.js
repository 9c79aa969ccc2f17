// Server-Sent Events over fetch(): EventSource only does GET, and every streaming route of the
// mesh is a POST. Envoy frames each gRPC message as `data: {...}\n\n`.

// Yields the parsed JSON of every `data:` frame of a fetch Response body, in order.
export async function* sseEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
    buffer = buffer.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = dataOf(frame);
      if (data !== null) yield parse(data);
    }
    if (done) break;
  }
  const rest = dataOf(buffer.trim());
  if (rest !== null) yield parse(rest);
}

function dataOf(frame) {
  const lines = frame.split("\n").filter((l) => l.startsWith("data:"));
  if (!lines.length) return null;
  return lines.map((l) => l.slice(5).replace(/^ /, "")).join("\n");
}

function parse(data) {
  try {
    return JSON.parse(data);
  } catch {
    return { error: { code: 2, message: `unparsable event: ${data.slice(0, 200)}` } };
  }
}
