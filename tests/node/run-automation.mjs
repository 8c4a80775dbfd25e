// Runs docs/airtable-automation.js the way Airtable's "Run a script" action
// does: in a fresh JavaScript context holding only what the sandbox offers
// (input, output, fetch, console, and, depending on --sandbox, crypto,
// TextEncoder, timers and AbortController), with the script's top-level
// await allowed. Node 18 or newer; nothing newer than Node 18 is used.
//
//   node run-automation.mjs SCRIPT [--sandbox full|no-subtle|bare]
//       inputs: a JSON object in the AIRTABLE_INPUT environment variable
//   node run-automation.mjs SCRIPT --selftest
//       the script's embedded SHA-256 / HMAC / UTF-8 / base64 against
//       RFC 4231, node:crypto and WebCrypto
//
// stdout gets one JSON line, {"ok":true,"output":{...}} or
// {"ok":false,"error":"...","output":{...}}; exit status 0 or 1. What the
// script logs goes to stderr.
//
// Sandboxes: "full" has crypto.subtle, TextEncoder, setTimeout and
// AbortController; "no-subtle" has the same but a crypto without subtle;
// "bare" has none of them.

import { readFileSync } from 'node:fs';
import nodeCrypto from 'node:crypto';
import vm from 'node:vm';

// Node 19+ has WebCrypto as globalThis.crypto; Node 18 only as
// require('node:crypto').webcrypto.
const webcrypto =
    globalThis.crypto && globalThis.crypto.subtle ? globalThis.crypto : nodeCrypto.webcrypto;

function sandboxGlobals(kind, outputs) {
    const log = (...args) => process.stderr.write(args.map(String).join(' ') + '\n');
    const g = {
        input: { config: () => JSON.parse(process.env.AIRTABLE_INPUT || '{}') },
        output: {
            set: (key, value) => {
                outputs[key] = JSON.parse(JSON.stringify(value));
            },
        },
        fetch: (...args) => fetch(...args),
        console: { log, info: log, warn: log, error: log },
    };
    if (kind === 'bare') return g;
    if (kind !== 'full' && kind !== 'no-subtle') throw new Error(`unknown sandbox ${kind}`);
    Object.assign(g, {
        TextEncoder,
        setTimeout,
        clearTimeout,
        AbortController,
        crypto:
            kind === 'full'
                ? webcrypto
                : { getRandomValues: (a) => webcrypto.getRandomValues(a) },
    });
    return g;
}

// The script's function declarations are hoisted, so a prelude placed
// before its body can call them before its last line (the send) runs.
function runInSandbox(scriptPath, globals, prelude) {
    const source = readFileSync(scriptPath, 'utf8');
    const wrapped = `(async () => { ${prelude}\n${source}\n})()`;
    const context = vm.createContext(globals);
    return new vm.Script(wrapped, { filename: scriptPath, lineOffset: -1 }).runInContext(context);
}

// ------------------------------------------------------------------ selftest

const hex = (bytes) => Buffer.from(Array.from(bytes)).toString('hex');
const bytesOf = (h) => new Uint8Array(Buffer.from(h, 'hex'));
const ascii = (s) => new Uint8Array(Buffer.from(s, 'latin1'));
const fill = (b, n) => new Uint8Array(n).fill(b);

// RFC 4231 section 4, HMAC-SHA-256 results.
const RFC4231 = [
    [fill(0x0b, 20), ascii('Hi There'),
        'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
    [ascii('Jefe'), ascii('what do ya want for nothing?'),
        '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'],
    [fill(0xaa, 20), fill(0xdd, 50),
        '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe'],
    [bytesOf('0102030405060708090a0b0c0d0e0f10111213141516171819'), fill(0xcd, 50),
        '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b'],
    // Test case 5 publishes only the first 128 bits.
    [fill(0x0c, 20), ascii('Test With Truncation'), 'a3b6167473100ee06e0c796c2955552b'],
    [fill(0xaa, 131), ascii('Test Using Larger Than Block-Size Key - Hash Key First'),
        '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54'],
    [fill(0xaa, 131), ascii('This is a test using a larger than block-size key and a larger ' +
        'than block-size data. The key needs to be hashed before being used by the HMAC algorithm.'),
        '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2'],
];

// FIPS 180-2 examples.
const SHA256 = [
    ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
    ['abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
        '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1'],
];

// Key/message pairs beyond ASCII: accents, CJK, astral emoji with a ZWJ, a
// combining mark, and a lone surrogate (encoded as U+FFFD).
const UNICODE = [
    ['clé-secrète-0123456789', 'Zoë Ångström'],
    ['ключ-🔑-0123456789abcdef', '{"name":"李小龍 👩‍💻"}'],
    ['plain-ascii-key-0123456789', 'e\u0301 and \uD83D alone'],
    ['\uDC00 lone-low-surrogate-key', ''],
];

// Deterministic bytes, so a failure reproduces.
function pseudoRandom(n, seed) {
    const out = new Uint8Array(n);
    let x = seed >>> 0 || 1;
    for (let i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        out[i] = x & 255;
    }
    return out;
}

async function selftest(f) {
    let checks = 0;
    const expect = (what, got, want) => {
        checks++;
        if (got !== want) throw new Error(`${what}: got ${got}, want ${want}`);
    };
    const nodeHmac = (k, m) => nodeCrypto.createHmac('sha256', Buffer.from(k)).update(Buffer.from(m)).digest('hex');

    for (const [msg, want] of SHA256) expect(`sha256(${msg})`, hex(f.sha256(ascii(msg))), want);
    // Every padding case: lengths around 55/56/64 bytes and several blocks.
    for (let n = 0; n <= 200; n++) {
        const m = pseudoRandom(n, n + 1);
        expect(`sha256 of ${n} bytes`, hex(f.sha256(m)),
            nodeCrypto.createHash('sha256').update(m).digest('hex'));
    }
    for (const [i, [key, msg, want]] of RFC4231.entries()) {
        const embedded = hex(f.hmacSha256Embedded(key, msg));
        expect(`RFC 4231 case ${i + 1}, embedded`, embedded.slice(0, want.length), want);
        const viaSubtle = await f.hmacSha256(key, msg);
        expect(`RFC 4231 case ${i + 1}, implementation`, viaSubtle.impl, 'webcrypto');
        expect(`RFC 4231 case ${i + 1}, webcrypto`, hex(viaSubtle.mac), embedded);
    }
    for (const [k, m] of UNICODE) {
        const kb = f.utf8Encode(k);
        const mb = f.utf8Encode(m);
        expect(`utf8Encode(${JSON.stringify(k)})`, hex(kb), Buffer.from(k, 'utf8').toString('hex'));
        expect(`utf8Encode(${JSON.stringify(m)})`, hex(mb), hex(new TextEncoder().encode(m)));
        const embedded = hex(f.hmacSha256Embedded(kb, mb));
        expect(`HMAC(${JSON.stringify(k)}, ${JSON.stringify(m)}) vs node:crypto`, embedded, nodeHmac(k, m));
        const viaSubtle = await f.hmacSha256(kb, mb);
        expect(`HMAC(${JSON.stringify(k)}, ${JSON.stringify(m)}) vs webcrypto`, hex(viaSubtle.mac), embedded);
    }
    for (let n = 0; n <= 40; n++) {
        const raw = pseudoRandom(n, 1000 + n);
        const b64 = Buffer.from(raw).toString('base64');
        expect(`base64Decode of ${n} bytes`, hex(f.base64Decode(b64)), hex(raw));
        expect(`base64Decode of ${n} bytes unpadded`, hex(f.base64Decode(b64.replace(/=+$/, ''))), hex(raw));
    }
    expect('base64Decode rejects other characters', f.base64Decode('not base64!'), null);
    const whsec = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    expect('keyBytes(whsec_...)', hex(f.keyBytes(whsec)),
        Buffer.from(whsec.slice(6), 'base64').toString('hex'));
    expect('keyBytes(plain)', hex(f.keyBytes('clé-secrète-0123456789')),
        Buffer.from('clé-secrète-0123456789', 'utf8').toString('hex'));
    return { checks };
}

// ---------------------------------------------------------------------- main

function finish(result) {
    process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(result.ok ? 0 : 1));
}

async function main(argv) {
    const script = argv[0];
    if (!script) throw new Error('usage: run-automation.mjs SCRIPT [--sandbox KIND | --selftest]');
    const outputs = {};
    if (argv.includes('--selftest')) {
        const globals = sandboxGlobals('full', outputs);
        globals.__selftest = selftest;
        const prelude = 'return __selftest({ sha256, hmacSha256, hmacSha256Embedded, ' +
            'utf8Encode, base64Decode, keyBytes });';
        const { checks } = await runInSandbox(script, globals, prelude);
        return finish({ ok: true, checks });
    }
    const i = argv.indexOf('--sandbox');
    const kind = i >= 0 ? argv[i + 1] : 'full';
    try {
        await runInSandbox(script, sandboxGlobals(kind, outputs), '');
        finish({ ok: true, output: outputs });
    } catch (e) {
        // As Airtable reports a thrown error: its message, not its stack.
        finish({ ok: false, error: e && e.message ? `${e.name}: ${e.message}` : String(e), output: outputs });
    }
}

main(process.argv.slice(2)).catch((e) => finish({ ok: false, error: String((e && e.stack) || e) }));
