// The official `@google/genai` npm package (Google Gen AI SDK), at its defaults but for the base
// URL, against `llm-caching serve` in front of the fake provider: generateContent and
// generateContentStream twice each, under the SDK's default API version (v1beta) and under v1 and
// v1alpha, which the gateway serves too and calls the upstream with. The second call of each
// pair is answered from the cache (identical content), and the provider saw one call per pair,
// on the version path the caller used. embedContent twice, the second call with one new text of
// three: the provider embeds only that one.
//   GATEWAY_URL=http://127.0.0.1:8080 FAKE_URL=http://127.0.0.1:9000 node genai_sdk_test.mjs
import { GoogleGenAI } from '@google/genai';

const gatewayUrl = process.env.GATEWAY_URL;
const fakeUrl = process.env.FAKE_URL;
if (!gatewayUrl || !fakeUrl) {
  console.error('set GATEWAY_URL and FAKE_URL');
  process.exit(2);
}

const model = 'gemini-2.0-flash';
let failures = 0;

function check(condition, message) {
  if (!condition) {
    failures += 1;
    console.error(`FAIL: ${message}`);
  }
}

async function stats() {
  return (await fetch(`${fakeUrl}/_stats`)).json();
}

function client(apiVersion) {
  const httpOptions = { baseUrl: gatewayUrl };
  if (apiVersion) httpOptions.apiVersion = apiVersion;
  return new GoogleGenAI({ apiKey: 'AIza-node-sdk-test', httpOptions });
}

async function exercise(apiVersion) {
  const label = apiVersion ?? 'v1beta (the SDK default)';
  const version = apiVersion ?? 'v1beta';
  const ai = client(apiVersion);
  const before = await stats();
  const prompt = `hello from the genai sdk over ${version}`;

  const first = await ai.models.generateContent({ model, contents: prompt });
  const second = await ai.models.generateContent({ model, contents: prompt });
  check(first.text?.startsWith(`echo: ${prompt}`), `${label}: unexpected text ${first.text}`);
  check(first.text === second.text, `${label}: the repeated answer differs`);
  check(JSON.stringify(first.candidates) === JSON.stringify(second.candidates), `${label}: the repeated candidates differ`);
  check(first.usageMetadata?.promptTokenCount > 0, `${label}: no usage metadata`);
  const headers = second.sdkHttpResponse?.headers ?? {};
  check(headers['x-llm-cache'] === 'HIT', `${label}: second call x-llm-cache ${headers['x-llm-cache']}, expected HIT`);

  const streamPrompt = `streamed from the genai sdk over ${version}`;
  const streamed = async () => {
    const chunks = [];
    for await (const chunk of await ai.models.generateContentStream({ model, contents: streamPrompt })) {
      chunks.push(chunk);
    }
    return chunks;
  };
  const live = await streamed();
  const replay = await streamed();
  const text = (chunks) => chunks.map((chunk) => chunk.text ?? '').join('');
  check(live.length > 1, `${label}: the stream arrived as ${live.length} chunk(s)`);
  check(text(live).startsWith(`echo: ${streamPrompt}`), `${label}: unexpected streamed text ${text(live)}`);
  check(JSON.stringify(live.map((c) => c.candidates)) === JSON.stringify(replay.map((c) => c.candidates)),
        `${label}: the replayed stream differs`);

  const after = await stats();
  check(after.total - before.total === 2, `${label}: the provider saw ${after.total - before.total} calls, not 2`);
  for (const method of ['generateContent', 'streamGenerateContent']) {
    const route = `/${version}/models:${method}`;
    const calls = (after.routes[route] ?? 0) - (before.routes[route] ?? 0);
    check(calls === 1, `${label}: ${route} was called ${calls} time(s) upstream, not once`);
  }
}

// embedContent, cached per input: the second call repeats two of the first call's texts, so
// only its new text goes upstream, and its embeddings come back in the order asked.
async function embeddings() {
  const ai = client(undefined);
  const embedModel = 'gemini-embedding-001';
  const before = await stats();
  const first = await ai.models.embedContent({ model: embedModel, contents: ['red text', 'green text'] });
  const second = await ai.models.embedContent({
    model: embedModel, contents: ['green text', 'blue text', 'red text'],
  });
  const values = (response, i) => JSON.stringify(response.embeddings?.[i]?.values);
  check(first.embeddings?.length === 2, `embedContent: ${first.embeddings?.length} embeddings, not 2`);
  check(second.embeddings?.length === 3, `embedContent: ${second.embeddings?.length} embeddings, not 3`);
  check(first.embeddings?.[0]?.values?.length > 0, 'embedContent: no values');
  check(values(second, 0) === values(first, 1), 'embedContent: a cached input answered differently');
  check(values(second, 2) === values(first, 0), 'embedContent: the answer is not in the order asked');
  check(values(second, 1) !== values(first, 0), 'embedContent: a new input got a cached answer');
  const after = await stats();
  const sent = after.embedding_inputs - before.embedding_inputs;
  check(sent === 3, `embedContent: the provider embedded ${sent} inputs, not 3 (2 + the 1 new one)`);
}

await exercise(undefined);
await exercise('v1');
await exercise('v1alpha');
await embeddings();

console.log(failures === 0 ? 'genai-sdk: OK' : `genai-sdk: ${failures} failure(s)`);
process.exit(failures === 0 ? 0 : 1);
