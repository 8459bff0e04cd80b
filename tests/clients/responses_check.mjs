// The official Node SDK against a running chatkeep: the Responses API's calls, including a
// tool loop through previous_response_id and the stream helper. Prints one JSON line.
// Usage: node responses_check.mjs <base_url_with_/v1>
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.argv[2], apiKey: process.env.OPENAI_API_KEY ?? "sk-node", maxRetries: 0 });
const seen = {};
const weather = {
  type: "function", name: "get_weather", strict: false,
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};

const created = await client.responses.create({ model: "gpt-4o", input: "hello from node", metadata: { sdk: "node" } });
seen.created = created.output_text;

const call = await client.responses.create({
  model: "gpt-4o", input: "Berlin", tools: [weather], tool_choice: { type: "function", name: "get_weather" },
  previous_response_id: created.id,
});
const fc = call.output[0];
seen.call = [fc.type, fc.name, JSON.parse(fc.arguments).city];

const stream = client.responses.stream({
  model: "gpt-4o", previous_response_id: call.id, tools: [weather],
  input: [{ type: "function_call_output", call_id: fc.call_id, output: "12C" }],
});
let deltas = "";
let sequence = [];
stream.on("response.output_text.delta", (event) => { deltas += event.delta; });
for await (const event of stream) sequence.push(event.sequence_number);
const final = await stream.finalResponse();
seen.streamed = [deltas, final.output_text];
seen.ordered = sequence.every((n, i) => n === i);

seen.retrieved = (await client.responses.retrieve(final.id)).output_text;
const items = [];
for await (const item of client.responses.inputItems.list(final.id)) items.push(item.type);
seen.items = items;
await client.responses.delete(created.id);
try {
  await client.responses.create({ model: "gpt-4o", input: "x", previous_response_id: final.id });
  seen.brokenChain = "found";
} catch (error) {
  seen.brokenChain = [error.status, error.code];
}
try {
  await client.responses.create({ model: "gpt-4o", input: "x", tools: [{ type: "web_search" }] });
} catch (error) {
  seen.badRequest = [error.status, error.param ?? error.error?.param];
}
console.log(JSON.stringify(seen));
