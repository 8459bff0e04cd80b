// The official Node SDK against a running chatkeep: every stored-completions call.
// Usage: node sdk_check.mjs <base_url_with_/v1>. Prints one JSON line of what it saw.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.argv[2], apiKey: process.env.OPENAI_API_KEY ?? "sk-node", maxRetries: 0 });
const seen = {};
const messages = [{ role: "user", content: "hello from node" }];

const created = await client.chat.completions.create({
  model: "gpt-4o", messages, store: true, metadata: { sdk: "node" }, seed: 7,
});
seen.created = created.choices[0].message.content;

const stream = await client.chat.completions.create({
  model: "gpt-4o", messages, stream: true, store: true, stream_options: { include_usage: true },
});
let text = "";
let streamId = null;
for await (const chunk of stream) {
  streamId = chunk.id;
  text += chunk.choices[0]?.delta?.content ?? "";
}
seen.streamed = text;

seen.retrieved = (await client.chat.completions.retrieve(created.id)).metadata;
seen.updated = (await client.chat.completions.update(created.id, { metadata: { sdk: "node2" } })).metadata;
const listed = [];
for await (const c of client.chat.completions.list({ metadata: { sdk: "node2" }, limit: 1 })) listed.push(c.id);
seen.listed = listed.length === 1 && listed[0] === created.id;
const all = [];
for await (const c of client.chat.completions.list({ order: "desc", limit: 1 })) all.push(c.id);
seen.paged = all.length === 2 && all[0] === streamId && all[1] === created.id;
const msgs = [];
for await (const m of client.chat.completions.messages.list(created.id)) msgs.push(m.role + ":" + m.content);
seen.messages = msgs;
seen.deleted = (await client.chat.completions.delete(created.id)).deleted;
try {
  await client.chat.completions.retrieve(created.id);
  seen.afterDelete = "found";
} catch (error) {
  seen.afterDelete = error.status;
}
try {
  await client.chat.completions.create({ model: "m", messages, temperature: 2.1 });
} catch (error) {
  seen.badRequest = [error.status, error.param ?? error.error?.param];
}
console.log(JSON.stringify(seen));
