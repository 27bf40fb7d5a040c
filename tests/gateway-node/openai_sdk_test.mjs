// The official `openai` npm package against `llm-caching serve` in front of the fake provider:
// non-streaming and streaming, twice each. The second call of each is a HIT with identical
// content, and the provider saw one call per pair.
//   GATEWAY_URL=http://127.0.0.1:8080 FAKE_URL=http://127.0.0.1:9000 node openai_sdk_test.mjs
import OpenAI from 'openai';

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

console.log(failures === 0 ? 'openai-sdk: OK' : `openai-sdk: ${failures} failure(s)`);
process.exit(failures === 0 ? 0 : 1);
