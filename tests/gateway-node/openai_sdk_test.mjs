// The official `openai` npm package against `llm-caching serve` in front of the fake provider:
// chat completions and the Responses API, non-streaming and streaming, twice each; then a file
// upload (multipart), which the gateway passes through uncached. The second call of each is a HIT with identical
// content, and the provider saw one call per pair.
//   GATEWAY_URL=http://127.0.0.1:8080 FAKE_URL=http://127.0.0.1:9000 node openai_sdk_test.mjs
import OpenAI, { toFile } from 'openai';

const gatewayUrl = process.env.GATEWAY_URL;
const fakeUrl = process.env.FAKE_URL;
if (!gatewayUrl || !fakeUrl) {
  console.error('set GATEWAY_URL and FAKE_URL');
  process.exit(2);
}

const client = new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: 'sk-node-sdk-test', maxRetries: 0 });
const model = 'gpt-4o-mini';
let failures = 0;

function check(condition, message) {
  if (!condition) {
    failures += 1;
    console.error(`FAIL: ${message}`);
  }
}

async function whole(text) {
  const { data, response } = await client.chat.completions
    .create({ model, messages: [{ role: 'user', content: text }] })
    .withResponse();
  return { data, cache: response.headers.get('x-llm-cache') };
}

async function streamed(text) {
  const { data: stream, response } = await client.chat.completions
    .create({ model, messages: [{ role: 'user', content: text }], stream: true })
    .withResponse();
  const chunks = [];
  let content = '';
  for await (const chunk of stream) {
    chunks.push(chunk);
    content += chunk.choices[0]?.delta?.content ?? '';
  }
  return { chunks, content, cache: response.headers.get('x-llm-cache') };
}

async function upstreamCalls() {
  const stats = await (await fetch(`${fakeUrl}/_stats`)).json();
  return stats.total;
}

const first = await whole('hello from node');
const second = await whole('hello from node');
check(first.cache === 'MISS', `first call: x-llm-cache ${first.cache}, expected MISS`);
check(second.cache === 'HIT', `second call: x-llm-cache ${second.cache}, expected HIT`);
check(JSON.stringify(first.data) === JSON.stringify(second.data), 'the HIT differs from the MISS');
check(first.data.choices[0].message.content.startsWith('echo: hello from node'),
      `unexpected content: ${first.data.choices[0].message.content}`);
check(await upstreamCalls() === 1, 'non-streaming pair: the provider did not see exactly one call');

const live = await streamed('streamed from node');
const replay = await streamed('streamed from node');
check(live.cache === 'MISS', `first stream: x-llm-cache ${live.cache}, expected MISS`);
check(replay.cache === 'HIT', `second stream: x-llm-cache ${replay.cache}, expected HIT`);
check(live.chunks.length > 1, 'the stream arrived as one chunk');
check(JSON.stringify(live.chunks) === JSON.stringify(replay.chunks), 'the replayed stream differs');
check(live.content.startsWith('echo: streamed from node'), `unexpected content: ${live.content}`);
check(await upstreamCalls() === 2, 'streaming pair: the provider did not see exactly one more call');

// The Responses API: client.responses.create, plain then streamed, each twice.
async function responseWhole(text) {
  const { data, response } = await client.responses.create({ model, input: text }).withResponse();
  return { data, cache: response.headers.get('x-llm-cache') };
}

async function responseStreamed(text) {
  const { data: stream, response } = await client.responses
    .create({ model, input: [{ role: 'user', content: text }], stream: true })
    .withResponse();
  const events = [];
  let content = '';
  for await (const event of stream) {
    events.push(event);
    if (event.type === 'response.output_text.delta') content += event.delta;
  }
  return { events, content, cache: response.headers.get('x-llm-cache') };
}

const answer = await responseWhole('responses from node');
const again = await responseWhole('responses from node');
check(answer.cache === 'MISS', `first response: x-llm-cache ${answer.cache}, expected MISS`);
check(again.cache === 'HIT', `second response: x-llm-cache ${again.cache}, expected HIT`);
check(JSON.stringify(answer.data) === JSON.stringify(again.data), 'the response HIT differs');
check(answer.data.output_text.startsWith('echo: responses from node'),
      `unexpected output_text: ${answer.data.output_text}`);
check(answer.data.usage.input_tokens > 0, 'the response has no usage');
check(await upstreamCalls() === 3, 'responses pair: the provider did not see exactly one more call');

const liveEvents = await responseStreamed('streamed responses from node');
const replayEvents = await responseStreamed('streamed responses from node');
check(liveEvents.cache === 'MISS', `first response stream: ${liveEvents.cache}, expected MISS`);
check(replayEvents.cache === 'HIT', `second response stream: ${replayEvents.cache}, expected HIT`);
check(liveEvents.events.length > 3, 'the response stream has too few events');
check(liveEvents.events[0].type === 'response.created', 'the stream does not begin with response.created');
check(liveEvents.events.at(-1).type === 'response.completed', 'the stream does not end with response.completed');
check(JSON.stringify(liveEvents.events) === JSON.stringify(replayEvents.events),
      'the replayed response stream differs');
check(liveEvents.content.startsWith('echo: streamed responses from node'),
      `unexpected streamed content: ${liveEvents.content}`);
check(await upstreamCalls() === 4, 'response stream pair: the provider did not see exactly one more call');

// Pass-through: files.create uploads multipart form data, which the gateway forwards uncached.
const fileBytes = new Uint8Array(300).map((_, i) => (i * 7) % 256);
const uploaded = await client.files.create({
  file: await toFile(fileBytes, 'data.jsonl'),
  purpose: 'batch',
});
check(uploaded.object === 'file', `files.create: unexpected answer ${JSON.stringify(uploaded)}`);
check(uploaded.bytes === fileBytes.length, `files.create: ${uploaded.bytes} bytes arrived, not ${fileBytes.length}`);
check(uploaded.filename === 'data.jsonl' && uploaded.purpose === 'batch',
      `files.create: ${uploaded.filename} / ${uploaded.purpose}`);
check(await upstreamCalls() === 5, 'files.create: the provider did not see the upload');

// Embeddings, cached per input: 3 inputs, then 5 of which 3 repeat. The SDK asks for base64
// by default (and decodes it); encoding_format 'float' is asked for explicitly after.
async function embeddingInputs() {
  return (await (await fetch(`${fakeUrl}/_stats`)).json()).embedding_inputs;
}
for (const encoding_format of [undefined, 'float']) {
  const before = await embeddingInputs();
  const embedModel = 'text-embedding-3-small';
  const three = await client.embeddings.create({ model: embedModel, input: ['a', 'b', 'c'], encoding_format });
  const five = await client.embeddings.create({ model: embedModel, input: ['d', 'a', 'b', 'e', 'c'], encoding_format });
  const label = encoding_format ?? 'base64 (the SDK default)';
  check(three.data.length === 3 && five.data.length === 5, `embeddings ${label}: wrong counts`);
  check(await embeddingInputs() - before === 5, `embeddings ${label}: the provider did not see exactly 3 + 2 inputs`);
  const same = (x, y) => JSON.stringify(Array.from(x)) === JSON.stringify(Array.from(y));
  check(same(five.data[1].embedding, three.data[0].embedding) &&
        same(five.data[2].embedding, three.data[1].embedding) &&
        same(five.data[4].embedding, three.data[2].embedding), `embeddings ${label}: repeated inputs differ`);
  check(five.data.every((d, i) => d.index === i), `embeddings ${label}: out of order`);
  check(typeof five.data[0].embedding[0] === 'number', `embeddings ${label}: not numbers`);
}

console.log(failures === 0 ? 'openai-sdk: OK' : `openai-sdk: ${failures} failure(s)`);
process.exit(failures === 0 ? 0 : 1);
