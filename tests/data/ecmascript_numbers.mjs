// Writes ecmascript_numbers.txt: IEEE-754 bit patterns (hex) and the number's text as
// JavaScript's own JSON.stringify writes it, which is the ECMAScript Number::toString form that
// RFC 8785 requires. tests/unit/test_canonical_numbers.cpp checks our canonical writer and exact
// parser against it. Regenerate (deterministic: a fixed-seed splitmix64) with
//   node tests/data/ecmascript_numbers.mjs > tests/data/ecmascript_numbers.txt
let state = 0x28n;  // issue 28
const mask = (1n << 64n) - 1n;
function next() {
  state = (state + 0x9e3779b97f4a7c15n) & mask;
  let z = state;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask;
  return z ^ (z >> 31n);
}
const view = new DataView(new ArrayBuffer(8));
const fromBits = (bits) => (view.setBigUint64(0, bits), view.getFloat64(0));
const toBits = (x) => (view.setFloat64(0, x), view.getBigUint64(0));
const unit = () => Number(next() >> 11n) / 2 ** 53;  // [0, 1), every double of 53 random bits

const groups = [
  // Any finite bit pattern: every exponent, subnormals, both signs.
  [800, () => { for (;;) { const x = fromBits(next()); if (Number.isFinite(x)) return x; } }],
  // Sampling temperatures and top_p as a client computes them: full-precision fractions.
  [600, () => unit()],
  [300, () => unit() * 2],
  // Around the switch to exponent form above (1e21) and below (1e-6), and 2^53.
  [300, () => 10 ** (17 + 5 * unit())],
  [300, () => 10 ** (-9 + 4 * unit())],
  [200, () => 2 ** 53 * (0.5 + 4 * unit())],
  // Short decimals and negatives of everything.
  [200, () => Number((unit() * 1000).toFixed(Number(next() % 6n)))],
  [300, () => -fromBits(next() & 0x7fffffffffffffffn) || -unit()],
];
const lines = [];
for (const [count, draw] of groups) {
  for (let i = 0; i < count; ++i) {
    const x = draw();
    if (!Number.isFinite(x)) { --i; continue; }
    lines.push(toBits(x).toString(16).padStart(16, '0') + ' ' + JSON.stringify(x));
  }
}
process.stdout.write(lines.join('\n') + '\n');
