// The official `@anthropic-ai/sdk` npm package, at its defaults but for the base URL and no
// retries, against `llm-caching serve` in front of the fake provider: messages.create plain and
// streamed (raw events), and the messages.stream helper, twice each. The second call of each is
// a HIT with identical content, and the provider saw one call per pair.
//   GATEWAY_URL=http://127.0.0.1:8080 FAKE_URL=http://127.0.0.1:9000 node anthropic_sdk_test.mjs
import Anthropic from '@anthropic-ai/sdk';

const gatewayUrl = process.env.GATEWAY_URL;
const fakeUrl = process.env.FAKE_URL;
if (!gatewayUrl || !fakeUrl) {
  console.error('set GATEWAY_URL and FAKE_URL');
  process.exit(2);
}

const client = new Anthropic({ baseURL: gatewayUrl, apiKey: 'sk-ant-node-sdk-test', maxRetries: 0 });
const model = 'claude-3-5-haiku-latest';
let failures = 0;

function check(condition, message) {
  if (!condition) {
    failures += 1;
    console.error(`FAIL: ${message}`);
  }
}

async function upstreamCalls() {
  const stats = await (await fetch(`${fakeUrl}/_stats`)).json();
  return stats.total;
}

function textOf(message) {
  return message.content.filter((block) => block.type === 'text').map((block) => block.text).join('');
}

async function whole(text) {
  const { data, response } = await client.messages
    .create({ model, max_tokens: 64, messages: [{ role: 'user', content: text }] })
    .withResponse();
  return { data, cache: response.headers.get('x-llm-cache') };
}

async function streamed(text) {
  const { data: stream, response } = await client.messages
    .create({ model, max_tokens: 64, messages: [{ role: 'user', content: text }], stream: true })
    .withResponse();
  const events = [];
  let content = '';
  for await (const event of stream) {
    events.push(event);
    if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') content += event.delta.text;
  }
  return { events, content, cache: response.headers.get('x-llm-cache') };
}

const first = await whole('hello from the anthropic sdk');
const second = await whole('hello from the anthropic sdk');
check(first.cache === 'MISS', `first call: x-llm-cache ${first.cache}, expected MISS`);
check(second.cache === 'HIT', `second call: x-llm-cache ${second.cache}, expected HIT`);
check(JSON.stringify(first.data) === JSON.stringify(second.data), 'the HIT differs from the MISS');
check(first.data.type === 'message' && first.data.role === 'assistant', `not a message: ${JSON.stringify(first.data)}`);
check(textOf(first.data).startsWith('echo: hello from the anthropic sdk'), `unexpected content: ${textOf(first.data)}`);
check(first.data.usage.input_tokens > 0, 'the message has no usage');
check(await upstreamCalls() === 1, 'plain pair: the provider did not see exactly one call');

const live = await streamed('streamed from the anthropic sdk');
const replay = await streamed('streamed from the anthropic sdk');
check(live.cache === 'MISS', `first stream: x-llm-cache ${live.cache}, expected MISS`);
check(replay.cache === 'HIT', `second stream: x-llm-cache ${replay.cache}, expected HIT`);
check(live.events.length > 3, 'the stream has too few events');
check(live.events[0].type === 'message_start', `the stream begins with ${live.events[0].type}`);
check(live.events.at(-1).type === 'message_stop', `the stream ends with ${live.events.at(-1).type}`);
check(JSON.stringify(live.events) === JSON.stringify(replay.events), 'the replayed stream differs');
check(live.content.startsWith('echo: streamed from the anthropic sdk'), `unexpected streamed content: ${live.content}`);
check(await upstreamCalls() === 2, 'stream pair: the provider did not see exactly one more call');

// The SDK's stream helper accumulates the events into the final message.
async function helper(text) {
  const stream = client.messages.stream({ model, max_tokens: 64, messages: [{ role: 'user', content: text }] });
  const deltas = [];
  stream.on('text', (delta) => deltas.push(delta));
  const message = await stream.finalMessage();
  return { message, deltas };
}
const helped = await helper('helped by the stream helper');
const helpedAgain = await helper('helped by the stream helper');
check(textOf(helped.message).startsWith('echo: helped by the stream helper'),
      `stream helper: unexpected final text ${textOf(helped.message)}`);
check(JSON.stringify(helped.message) === JSON.stringify(helpedAgain.message), 'stream helper: the replayed final message differs');
check(helped.deltas.join('') === textOf(helped.message), 'stream helper: the text deltas do not add up to the message');
check(await upstreamCalls() === 3, 'stream helper pair: the provider did not see exactly one more call');

// countTokens goes through the cached count_tokens route.
const counted = await client.messages.countTokens({ model, messages: [{ role: 'user', content: 'count me' }] });
check(counted.input_tokens > 0, `countTokens: ${JSON.stringify(counted)}`);

console.log(failures === 0 ? 'anthropic-sdk: OK' : `anthropic-sdk: ${failures} failure(s)`);
process.exit(failures === 0 ? 0 : 1);
