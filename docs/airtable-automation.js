/*
 * rosterd: send one signed user event from an Airtable automation.
 *
 * Paste this whole file into a "Run a script" action and add these input
 * variables (README, "Sending events from Airtable"):
 *
 *   rosterdUrl   https://rosterd.example.com  (/api/sync/users/inbound is
 *                appended unless the URL already ends with it)
 *   secret       one of the values of rosterd's AIRTABLE_USER_SYNC_SECRET
 *                (a plain secret, or whsec_<base64>)
 *   recordId     the trigger's "Airtable record ID"
 *   occurredAt   a "Last modified time" field of the record, limited to the
 *                fields below: it orders events (newest wins) and names them
 *   email        the person's email (required unless the event is a deletion)
 *   name         optional
 *   status       optional: active, disabled or deleted (deleted sends
 *                user.deleted); any case
 *   groups       optional: a multiple-select or linked-record list, or a
 *                comma-separated text
 *   eventType    optional: user.created, user.updated or user.deleted (or
 *                created / updated / deleted); default user.updated, or
 *                user.deleted when status is deleted
 *
 * The event id is derived from recordId, the event type and occurredAt, so
 * re-running the automation for the same change is answered "duplicate" and
 * changes nothing. The body is signed with HMAC-SHA256 (X-Signature:
 * sha256=<hex>) by crypto.subtle when the sandbox has it, else by the small
 * SHA-256 below. Transient failures (429, 502, 503, 504, network errors) are
 * retried, honouring Retry-After, within Airtable's 30 s limit; any other
 * refusal throws, which marks the run failed with rosterd's error. The secret
 * is never logged or output.
 *
 * Only function declarations follow; the one statement that runs is the last
 * line. (rosterd's tests call the functions directly, before that line.)
 */

function limits() {
    return {
        attempts: 3,
        // Airtable stops a script after 30 s; keep clear of it.
        budgetMs: 20000,
        attemptTimeoutMs: 8000,
        firstBackoffMs: 500,
        // Not worth starting an attempt with less time than this left.
        minAttemptMs: 2000,
    };
}

function inboundPath() {
    return '/api/sync/users/inbound';
}

// ------------------------------------------------------------------ inputs

// Our own refusals, told apart from fetch's errors (which are retried).
function fail(message) {
    const e = new Error(message);
    e.name = 'RosterdError';
    throw e;
}

function inputText(config, name) {
    const v = config[name];
    if (v === undefined || v === null) return '';
    if (Array.isArray(v)) return v.map(String).join(',').trim();
    return String(v).trim();
}

function required(config, name) {
    const v = inputText(config, name);
    if (v === '') fail('input variable "' + name + '" is missing or empty');
    return v;
}

// Multiple-select and linked-record variables arrive as arrays (of names, or
// of objects with a name); a text field as "a, b".
function inputList(config, name) {
    const v = config[name];
    if (v === undefined || v === null) return [];
    const items = Array.isArray(v) ? v : String(v).split(',');
    const out = [];
    for (const item of items) {
        const s = item !== null && typeof item === 'object' ? item.name : item;
        if (s === undefined || s === null) continue;
        const t = String(s).trim();
        if (t !== '') out.push(t);
    }
    return out;
}

function endpointUrl(raw) {
    if (!/^https?:\/\/[^/]/i.test(raw)) {
        fail('input variable "rosterdUrl" must start with https:// (or http://)');
    }
    const base = raw.replace(/\/+$/, '');
    return base.endsWith(inboundPath()) ? base : base + inboundPath();
}

function eventTypeOf(raw, status) {
    const kinds = { created: 'user.created', updated: 'user.updated', deleted: 'user.deleted' };
    const t = raw.toLowerCase().replace(/^user\./, '');
    if (t === '') return status === 'deleted' ? 'user.deleted' : 'user.updated';
    if (!Object.prototype.hasOwnProperty.call(kinds, t)) {
        fail('input variable "eventType" must be user.created, user.updated or user.deleted');
    }
    if (status === 'deleted' && t !== 'deleted') {
        fail('status is "deleted" but eventType is ' + kinds[t] + '; leave eventType empty');
    }
    return kinds[t];
}

function statusOf(raw) {
    const s = raw.toLowerCase();
    if (s !== '' && s !== 'active' && s !== 'disabled' && s !== 'deleted') {
        fail('input variable "status" must be active, disabled or deleted');
    }
    return s;
}

// RFC 3339 with an offset, normalised so that a re-run names the same event.
function occurredAtOf(raw) {
    const rfc3339 =
        /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
    const ms = rfc3339.test(raw) ? Date.parse(raw.replace(' ', 'T')) : NaN;
    if (Number.isNaN(ms)) {
        fail(
            'input variable "occurredAt" must be a date-time with a time zone, ' +
                'e.g. a Last modified time field (got "' + raw.slice(0, 40) + '")',
        );
    }
    return new Date(ms).toISOString();
}

function readInputs(config) {
    const status = statusOf(inputText(config, 'status'));
    const secret = required(config, 'secret');
    if (secret.indexOf(',') >= 0) {
        fail('input variable "secret" must hold one secret, not a comma-separated list');
    }
    return {
        url: endpointUrl(required(config, 'rosterdUrl')),
        secret: secret,
        recordId: required(config, 'recordId'),
        occurredAt: occurredAtOf(required(config, 'occurredAt')),
        eventType: eventTypeOf(inputText(config, 'eventType'), status),
        email: inputText(config, 'email'),
        name: inputText(config, 'name'),
        status: status,
        groups: inputList(config, 'groups'),
    };
}

// Everything else about the event (email syntax, lengths, record id
// characters) is rosterd's to check; its 422 names the field.
function buildEvent(inputs) {
    const kind = inputs.eventType.slice('user.'.length);
    const user = { id: inputs.recordId };
    if (inputs.eventType === 'user.deleted') {
        if (inputs.email !== '') user.email = inputs.email;
    } else {
        user.email = inputs.email;
        if (inputs.name !== '') user.name = inputs.name;
        if (inputs.status !== '') user.status = inputs.status;
        user.groups = inputs.groups;
    }
    return {
        eventId: 'airtable:' + inputs.recordId + ':' + kind + ':' + inputs.occurredAt,
        eventType: inputs.eventType,
        occurredAt: inputs.occurredAt,
        user: user,
    };
}

// ------------------------------------------------------------------- bytes

function utf8Bytes(s) {
    if (typeof TextEncoder === 'function') return new TextEncoder().encode(s);
    return utf8Encode(s);
}

// What TextEncoder does, for sandboxes without it: a lone surrogate becomes
// U+FFFD.
function utf8Encode(s) {
    const out = [];
    for (let i = 0; i < s.length; i++) {
        let c = s.charCodeAt(i);
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
            const d = s.charCodeAt(i + 1);
            if (d >= 0xdc00 && d <= 0xdfff) {
                c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
                i++;
            }
        }
        if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
        if (c < 0x80) {
            out.push(c);
        } else if (c < 0x800) {
            out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
        } else if (c < 0x10000) {
            out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
        } else {
            out.push(
                0xf0 | (c >> 18),
                0x80 | ((c >> 12) & 63),
                0x80 | ((c >> 6) & 63),
                0x80 | (c & 63),
            );
        }
    }
    return new Uint8Array(out);
}

// Standard alphabet, padding optional; null when the text is not base64.
function base64Decode(text) {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const s = text.replace(/=+$/, '');
    if (s.length % 4 === 1 || text.length - s.length > 2) return null;
    const out = [];
    let acc = 0;
    let bits = 0;
    for (let i = 0; i < s.length; i++) {
        const v = alphabet.indexOf(s[i]);
        if (v < 0) return null;
        acc = (acc << 6) | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push((acc >> bits) & 255);
        }
    }
    return new Uint8Array(out);
}

function toHex(bytes) {
    let s = '';
    for (let i = 0; i < bytes.length; i++) s += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16);
    return s;
}

// As rosterd reads its secrets: whsec_<base64> is the key's bytes, anything
// else is its own UTF-8 bytes; at least 16 bytes either way.
function keyBytes(secret) {
    let key;
    if (secret.startsWith('whsec_')) {
        key = base64Decode(secret.slice('whsec_'.length));
        if (key === null) fail('the secret starts with whsec_ but the rest is not base64');
    } else {
        key = utf8Bytes(secret);
    }
    if (key.length < 16) {
        fail('the secret is ' + key.length + ' bytes; rosterd refuses keys under 16 bytes');
    }
    return key;
}

// ------------------------------------------------------------ HMAC-SHA256

function webCryptoSubtle() {
    if (typeof crypto !== 'object' || crypto === null) return null;
    const subtle = crypto.subtle;
    return subtle && typeof subtle.importKey === 'function' ? subtle : null;
}

async function hmacSha256(key, data) {
    const subtle = webCryptoSubtle();
    if (subtle) {
        try {
            const k = await subtle.importKey(
                'raw',
                key,
                { name: 'HMAC', hash: 'SHA-256' },
                false,
                ['sign'],
            );
            return { mac: new Uint8Array(await subtle.sign('HMAC', k, data)), impl: 'webcrypto' };
        } catch (e) {
            // A sandbox may expose a subtle that refuses HMAC; the embedded
            // implementation gives the same bytes.
        }
    }
    return { mac: hmacSha256Embedded(key, data), impl: 'embedded' };
}

// RFC 2104 over the SHA-256 below.
function hmacSha256Embedded(key, data) {
    const block = 64;
    let k = key.length > block ? sha256(key) : key;
    const inner = new Uint8Array(block + data.length);
    const outer = new Uint8Array(block + 32);
    for (let i = 0; i < block; i++) {
        const b = i < k.length ? k[i] : 0;
        inner[i] = b ^ 0x36;
        outer[i] = b ^ 0x5c;
    }
    inner.set(data, block);
    outer.set(sha256(inner), block);
    return sha256(outer);
}

function rotr(x, n) {
    return (x >>> n) | (x << (32 - n));
}

// FIPS 180-4 SHA-256 of a byte array, on 32-bit integers.
function sha256(data) {
    const K = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ];
    const H = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ];
    const n = data.length;
    // Message, 0x80, zeros, then the bit length as a big-endian 64-bit
    // integer, to a multiple of 64 bytes.
    const total = Math.ceil((n + 9) / 64) * 64;
    const m = new Uint8Array(total);
    m.set(data);
    m[n] = 0x80;
    const bitsHigh = Math.floor(n / 0x20000000);
    const bitsLow = (n * 8) >>> 0;
    for (let i = 0; i < 4; i++) {
        m[total - 8 + i] = (bitsHigh >>> (24 - 8 * i)) & 255;
        m[total - 4 + i] = (bitsLow >>> (24 - 8 * i)) & 255;
    }
    const w = new Int32Array(64);
    for (let off = 0; off < total; off += 64) {
        for (let i = 0; i < 16; i++) {
            const j = off + 4 * i;
            w[i] = (m[j] << 24) | (m[j + 1] << 16) | (m[j + 2] << 8) | m[j + 3];
        }
        for (let i = 16; i < 64; i++) {
            const x = w[i - 15];
            const y = w[i - 2];
            const s0 = rotr(x, 7) ^ rotr(x, 18) ^ (x >>> 3);
            const s1 = rotr(y, 17) ^ rotr(y, 19) ^ (y >>> 10);
            w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
        }
        let a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
        for (let i = 0; i < 64; i++) {
            const t1 =
                (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
            const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
            h = g;
            g = f;
            f = e;
            e = (d + t1) | 0;
            d = c;
            c = b;
            b = a;
            a = (t1 + t2) | 0;
        }
        H[0] = (H[0] + a) | 0;
        H[1] = (H[1] + b) | 0;
        H[2] = (H[2] + c) | 0;
        H[3] = (H[3] + d) | 0;
        H[4] = (H[4] + e) | 0;
        H[5] = (H[5] + f) | 0;
        H[6] = (H[6] + g) | 0;
        H[7] = (H[7] + h) | 0;
    }
    const out = new Uint8Array(32);
    for (let i = 0; i < 8; i++) {
        out[4 * i] = H[i] >>> 24;
        out[4 * i + 1] = (H[i] >>> 16) & 255;
        out[4 * i + 2] = (H[i] >>> 8) & 255;
        out[4 * i + 3] = H[i] & 255;
    }
    return out;
}

// ---------------------------------------------------------------- delivery

function isTransient(status) {
    return status === 429 || status === 502 || status === 503 || status === 504;
}

// Delay-seconds or an HTTP date; null when absent or unreadable.
function retryAfterMs(header, now) {
    if (header === null || header === undefined) return null;
    const h = String(header).trim();
    if (/^\d+$/.test(h)) return Number(h) * 1000;
    const at = Date.parse(h);
    return Number.isNaN(at) ? null : Math.max(0, at - now);
}

function pause(ms) {
    if (typeof setTimeout === 'function') {
        return new Promise(function (resolve) {
            setTimeout(resolve, ms);
        });
    }
    // Airtable's sandbox may have no timers; the waits are short and bounded.
    const until = Date.now() + ms;
    while (Date.now() < until) {
        // wait
    }
    return Promise.resolve();
}

function parseJson(text) {
    try {
        return JSON.parse(text);
    } catch (e) {
        return null;
    }
}

function hint(status, code) {
    if (status === 401) {
        return 'the secret input matches none of rosterd\'s AIRTABLE_USER_SYNC_SECRET values';
    }
    if (status === 404) {
        return 'check rosterdUrl; rosterd also answers 404 here while USER_WEBHOOK_SYNC_ENABLED is off';
    }
    if (code === 'event_id_conflict') {
        return 'this change was sent before with different field values: occurredAt must be a ' +
            'Last modified time field that covers every field the script sends';
    }
    return '';
}

function refusal(status, answer, text) {
    const code = answer && typeof answer.error === 'string' ? answer.error : '';
    let msg = 'rosterd answered ' + status + (code ? ' ' + code : '');
    if (answer && Array.isArray(answer.fields)) {
        msg += ': ' + answer.fields.map(function (f) {
            return f.field + ' ' + f.message;
        }).join('; ');
    } else if (answer && typeof answer.detail === 'string') {
        msg += ': ' + answer.detail;
    } else if (!answer && text) {
        msg += ': ' + text.slice(0, 200);
    }
    const why = hint(status, code);
    return why ? msg + ' (' + why + ')' : msg;
}

async function postOnce(url, body, signature, timeoutMs) {
    const init = {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Signature': signature },
        body: body,
    };
    let timer = null;
    if (typeof AbortController === 'function' && typeof setTimeout === 'function') {
        const ctl = new AbortController();
        timer = setTimeout(function () {
            ctl.abort();
        }, Math.max(1, timeoutMs));
        init.signal = ctl.signal;
    }
    try {
        const res = await fetch(url, init);
        const text = await res.text();
        return { status: res.status, retryAfter: res.headers.get('retry-after'), text: text };
    } finally {
        if (timer !== null) clearTimeout(timer);
    }
}

async function deliver(url, body, signature, deadline) {
    const lim = limits();
    for (let attempt = 1; ; attempt++) {
        let problem;
        let wait = null;
        try {
            const timeout = Math.min(lim.attemptTimeoutMs, deadline - Date.now());
            const res = await postOnce(url, body, signature, timeout);
            const answer = parseJson(res.text);
            if (res.status >= 200 && res.status < 300) {
                return { status: res.status, answer: answer || {}, attempts: attempt };
            }
            problem = refusal(res.status, answer, res.text);
            if (!isTransient(res.status)) fail(problem);
            wait = retryAfterMs(res.retryAfter, Date.now());
        } catch (e) {
            if (e && e.name === 'RosterdError') throw e;
            const why = e && e.cause ? e.cause.code || e.cause.message : '';
            const cause = why ? ' (' + why + ')' : '';
            problem = 'could not reach rosterd: ' + (e && e.message ? e.message : String(e)) + cause;
        }
        if (attempt >= lim.attempts) fail(problem + '; gave up after ' + attempt + ' attempts');
        const delay = wait === null ? lim.firstBackoffMs * Math.pow(2, attempt - 1) : wait;
        if (Date.now() + delay + lim.minAttemptMs > deadline) {
            fail(problem + '; no time left to retry within the script time limit');
        }
        await pause(delay);
    }
}

// ------------------------------------------------------------------- main

async function sendEvent(config, out, log) {
    const started = Date.now();
    const inputs = readInputs(config);
    const event = buildEvent(inputs);
    // Serialised once and signed as UTF-8. fetch sends the same bytes:
    // JSON.stringify escapes lone surrogates, so the string always encodes
    // the same way.
    const body = JSON.stringify(event);
    const signed = await hmacSha256(keyBytes(inputs.secret), utf8Bytes(body));
    const result = await deliver(
        inputs.url,
        body,
        'sha256=' + toHex(signed.mac),
        started + limits().budgetMs,
    );
    const outcome = String(result.answer.outcome || 'accepted');
    out.set('outcome', outcome);
    out.set('eventId', event.eventId);
    out.set('httpStatus', result.status);
    out.set('attempts', result.attempts);
    out.set('hmac', signed.impl);
    log(
        'rosterd: ' + event.eventType + ' ' + inputs.recordId + ' -> ' + outcome +
            ' (event ' + event.eventId + ', ' + result.attempts + ' attempt' +
            (result.attempts === 1 ? '' : 's') + ')',
    );
}

await sendEvent(input.config(), output, function (line) {
    console.log(line);
});
