#!/usr/bin/env node
// browser-matrix.js runs socket.io-client browser bundles in headless
// Chromium against a herald server, for socketio/browser_matrix_test.go and
// socketio/browser_expiry_test.go. It uses playwright-core from this
// directory's node_modules and the Chromium at HERALD_CHROMIUM (default
// /usr/bin/chromium).
//
// Usage: node browser-matrix.js [--parallel] CASES_JSON
//
// CASES_JSON is an array of {"name": ..., "url": ..., "page": ...}; "page"
// "expiry" runs pageExpiry (see there) instead of the matrix case below.
// Cases run one at a time, or all at once with --parallel. Each url is a page of
// the Go test's server that loads one client release's bundle and carries
// the case in its query: user, token, transports (comma-separated), upgrade
// (1 or 0). For each case, in a fresh browser context, the
// page connects with io(origin, {auth: {token}, transports, upgrade}), waits
// for connect and the server's "authenticated" greeting, waits for the
// upgrade to WebSocket when asked for one, asks the server (POST
// /test/emit?user=) to emit job_progress to its user and waits for it, emits
// "echo" with an ack callback, with timeout() (4.4+) and with emitWithAck()
// (4.6+), connects with withCredentials to a server of another origin that
// allows this one and to one that does not, sends "file" with binary data (ArrayBuffer, Blob, typed arrays)
// and reads the binary ack and event that come back, asks the server ("bm_who", acked) which socket, user and
// transport it sees, then disconnects and waits until every request of the
// closed session has ended.
//
// The page only observes; the Go test judges. Each case prints one JSON line
// on stdout: {"case": name, "result": {...}} with "result.error" set when a
// step failed or timed out, and "console" (the page's console) then. The
// exit status is 0 when every case printed its line, 1 otherwise.
'use strict';

const path = require('node:path');
const { createRequire } = require('node:module');

const { chromium } = createRequire(path.join(__dirname, 'package.json'))('playwright-core');

const CHROMIUM = process.env.HERALD_CHROMIUM || '/usr/bin/chromium';
const TOTAL_TIMEOUT_MS = 45_000;
const CASE_TIMEOUT_MS = 15_000; // the whole of one case
const STEP_TIMEOUT_MS = 5_000; // one wait inside the page
const CHROMIUM_ARGS = [
  '--no-sandbox', // needed as root
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// pageCase runs in the page. It never throws: a failed step is reported as
// result.error, with what was observed before it.
async function pageCase(stepMs) {
  const r = { error: null };
  let socket = null;
  const within = (what, p) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${stepMs} ms waiting for ${what}`)), stepMs);
      p.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e) => {
          clearTimeout(timer);
          reject(e);
        },
      );
    });
  const ack = (what, emit) => within(what, new Promise((resolve, reject) => emit(resolve, reject)));
  // Count the client's XMLHttpRequests (long-polling) to wait, at the end,
  // until the requests of the closed session have been answered: a browser
  // context closed with a poll in flight aborts it, and an abort that lands
  // while the server is just taking the poll trips a data race in the
  // upstream engine (see browser_matrix_test.go).
  let requests = 0;
  const idle = [];
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function (...args) {
    requests++;
    this.addEventListener('loadend', () => {
      requests--;
      if (requests === 0) idle.splice(0).forEach((f) => f());
    });
    return send.apply(this, args);
  };
  try {
    const q = new URLSearchParams(location.search);
    const user = q.get('user');
    const transports = q.get('transports').split(',');
    const upgrade = q.get('upgrade') === '1';
    r.loaded = typeof io === 'function';
    if (!r.loaded) throw new Error('the socket.io-client bundle did not load');

    socket = io(location.origin, {
      auth: { token: q.get('token') },
      transports,
      upgrade,
      reconnection: false,
      forceNew: true,
    });
    r.features = {
      timeout: typeof socket.timeout === 'function',
      emitWithAck: typeof socket.emitWithAck === 'function',
    };
    // The manager opens its engine asynchronously; an upgrade is probed
    // only after the engine's open, so this listener sees every upgrade.
    r.upgraded = null;
    const upgraded = new Promise((resolve) => {
      socket.io.on('open', () => {
        socket.io.engine.on('upgrade', (t) => {
          r.upgraded = t && t.name;
          resolve(r.upgraded);
        });
      });
    });
    const authenticated = new Promise((resolve) => socket.once('authenticated', (...args) => resolve(args)));
    const connected = new Promise((resolve, reject) => {
      socket.once('connect', () => resolve(socket.io.engine.transport.name));
      socket.once('connect_error', (e) => reject(new Error(`connect_error: ${e && e.message}`)));
    });

    r.connectTransport = await within('connect', connected);
    r.socketId = socket.id;
    const greeting = await within('the authenticated event', authenticated);
    r.authenticated = JSON.stringify(greeting[0]);
    if (upgrade) await within('the upgrade', upgraded);

    // A server emit, asked for once the server has greeted the socket
    // (it has then joined the user's room).
    const job = new Promise((resolve) => socket.once('job_progress', (...args) => resolve(args)));
    const res = await within('POST /test/emit', fetch(`/test/emit?user=${encodeURIComponent(user)}`, { method: 'POST' }));
    if (res.status !== 204) throw new Error(`POST /test/emit: ${res.status} ${await res.text()}`);
    const args = await within('job_progress', job);
    r.jobProgress = {
      args: args.length,
      hasAck: typeof args[args.length - 1] === 'function',
      payload: JSON.stringify(args[0]),
    };

    r.ackCallback = await ack('the echo ack (callback)', (resolve) => socket.emit('echo', { text: 'callback' }, resolve));
    if (r.features.timeout) {
      r.ackTimeout = await ack('the echo ack (timeout())', (resolve, reject) =>
        socket.timeout(stepMs).emit('echo', { text: 'timeout' }, (err, v) => (err ? reject(err) : resolve(v))),
      );
    }
    if (r.features.emitWithAck) {
      r.ackPromise = await within('the echo ack (emitWithAck())', socket.emitWithAck('echo', { text: 'promise' }));
      r.ackPromiseTimeout = await within(
        'the echo ack (timeout().emitWithAck())',
        socket.timeout(stepMs).emitWithAck('echo', { text: 'promise timeout' }),
      );
    }
    // Binary data: an ArrayBuffer, a Blob, typed arrays, nested; "file"
    // acks it with each value reversed and emits that back as "file".
    const bytesOf = (v) => {
      if (v instanceof ArrayBuffer) return { ArrayBuffer: Array.from(new Uint8Array(v)) };
      if (Array.isArray(v)) return v.map(bytesOf);
      if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, bytesOf(x)]));
      return v;
    };
    const fileEvent = new Promise((resolve) => socket.once('file', (...args) => resolve(args)));
    const file = {
      name: 'f',
      data: new Uint8Array([1, 2, 3]).buffer,
      parts: [new Blob([new Uint8Array([4, 5])]), new Uint8Array([6, 7, 8])],
      meta: { thumb: new Uint8Array([255, 0]) },
    };
    r.fileAck = JSON.stringify(bytesOf(await ack('the file ack', (resolve) => socket.emit('file', file, resolve))));
    r.fileEvent = JSON.stringify(bytesOf((await within('the file event', fileEvent))[0]));
    // Cross-origin, with credentials (cookies, and CORS that must name
    // the origin): a server that allows this page's origin, and one that
    // does not.
    const connectOther = (base, token) => {
      const other = io(base, { auth: { token }, transports, upgrade, reconnection: false, forceNew: true, withCredentials: true });
      return new Promise((resolve) => {
        other.once('connect', () => {
          const name = other.io.engine.transport.name;
          other.disconnect();
          resolve(name);
        });
        other.once('connect_error', (e) => {
          other.disconnect();
          resolve(`connect_error: ${e && e.message}`);
        });
      });
    };
    r.crossOrigin = await within('the cross-origin connect', connectOther(q.get('x'), q.get('xtoken')));
    r.badOrigin = await within('the refused cross-origin connect', connectOther(q.get('bad'), q.get('badtoken')));
    r.who = await ack('the bm_who ack', (resolve) => socket.emit('bm_who', { text: 'who' }, resolve));
    r.transport = socket.io.engine.transport.name;

    // The client hangs up: its session's requests must all end.
    socket.disconnect();
    await within('the end of the closed session\'s requests', new Promise((resolve) => (requests === 0 ? resolve() : idle.push(resolve))));
    r.drained = true;
  } catch (e) {
    r.error = String((e && e.message) || e);
    if (socket) socket.disconnect();
  }
  return r;
}

// pageExpiry runs in the page, for TestBrowserTokenExpiry: a client whose
// token expires while it is connected. The query names the user, the
// token's lifetime (ttl) and what the page does on auth_expired (onExpired):
// "refresh" fetches a fresh token for the auth callback's next call,
// "reauth" fetches one and sends it in reauthenticate, "none" does nothing.
// Tokens come from GET /test/token. The page connects with auth as a
// callback, quick reconnection and WebSocket only (so that no long-poll is
// in flight when its context closes: see browser_matrix_test.go), waits for auth_expired, then
// (reauth) until 1.5 s past the old expiry or (else) for the disconnect and
// the reconnection's connect or connect_error. Once connected again it asks
// the server who it is (bm_who) and for a job_progress (POST /test/emit).
// It logs every event with Date.now() and never throws.
async function pageExpiry(stepMs) {
  const r = { error: null, log: [], tokens: [], authCalls: [] };
  let socket = null;
  const within = (what, p) =>
    Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out after ${stepMs} ms waiting for ${what}`)), stepMs))]);
  const wake = [];
  let closing = false; // the page's own disconnect is not logged
  const record = (type, fields) => {
    if (closing) return null;
    const e = { type, at: Date.now(), ...fields };
    r.log.push(e);
    wake.splice(0).forEach((f) => f());
    return e;
  };
  // until resolves with the first log entry that matches.
  const until = (what, match) =>
    within(what, new Promise((resolve) => {
      const check = () => {
        const e = r.log.find(match);
        if (e) resolve(e);
        else wake.push(check);
      };
      check();
    }));
  const after = (e) => (x) => r.log.indexOf(x) > r.log.indexOf(e);
  try {
    const q = new URLSearchParams(location.search);
    const user = q.get('user');
    const onExpired = q.get('onExpired');
    const fetchToken = async (label, ttl) => {
      const res = await within(`GET /test/token (${label})`, fetch(`/test/token?user=${encodeURIComponent(user)}&ttl=${ttl}`));
      if (res.status !== 200) throw new Error(`GET /test/token: ${res.status} ${await res.text()}`);
      const { token, exp } = await res.json();
      r.tokens.push({ label, exp });
      return { label, token };
    };
    let current = await fetchToken('initial', q.get('ttl'));
    socket = io(location.origin, {
      auth: (cb) => {
        r.authCalls.push(current.label);
        cb({ token: current.token });
      },
      transports: ['websocket'],
      reconnectionDelay: 100,
      reconnectionDelayMax: 100,
      randomizationFactor: 0,
      forceNew: true,
    });
    socket.on('connect', () => record('connect', { id: socket.id }));
    socket.on('connect_error', (e) => record('connect_error', { message: e && e.message, data: e && e.data !== undefined ? e.data : null, active: socket.active }));
    socket.on('disconnect', (reason) => record('disconnect', { reason }));
    socket.io.on('reconnect_attempt', (n) => record('reconnect_attempt', { attempt: n }));
    for (const ev of ['authenticated', 'job_progress']) socket.on(ev, (p) => record(ev, { payload: p }));
    let reacted = Promise.resolve();
    socket.on('auth_expired', (p) => {
      record('auth_expired', { payload: p });
      if (onExpired === 'none') return;
      reacted = (async () => {
        const fresh = await fetchToken('fresh', '1h');
        if (onExpired === 'reauth') {
          const ack = await within('the reauthenticate ack', socket.emitWithAck('reauthenticate', { token: fresh.token }));
          record('reauthenticated', { ack });
        }
        current = fresh;
      })();
    });

    const first = await until('connect', (e) => e.type === 'connect' || e.type === 'connect_error');
    if (first.type !== 'connect') throw new Error(`connect_error: ${first.message}`);
    await until('the authenticated event', (e) => e.type === 'authenticated');
    const warned = await until('auth_expired', (e) => e.type === 'auth_expired');
    await within('the reaction to auth_expired', reacted);
    if (onExpired === 'reauth') {
      // Stay past the old expiry, with some slack.
      const old = Date.parse(warned.payload.expiresAt);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, old + 1500 - Date.now())));
    } else {
      const gone = await until('the disconnect', (e) => e.type === 'disconnect');
      const back = await until('the reconnection', (e) => (e.type === 'connect' || e.type === 'connect_error') && after(gone)(e));
      if (back.type !== 'connect') {
        // Give a client that would retry the time to show it.
        await new Promise((resolve) => setTimeout(resolve, 500));
        closing = true;
        socket.disconnect();
        return r;
      }
      await until('the authenticated event after the reconnection', (e) => e.type === 'authenticated' && after(back)(e));
    }
    r.who = await within('the bm_who ack', socket.emitWithAck('bm_who', { text: 'who' }));
    const emitted = record('emit', {});
    const res = await within('POST /test/emit', fetch(`/test/emit?user=${encodeURIComponent(user)}`, { method: 'POST' }));
    if (res.status !== 204) throw new Error(`POST /test/emit: ${res.status} ${await res.text()}`);
    await until('job_progress', (e) => e.type === 'job_progress' && after(emitted)(e));
    r.socketId = socket.id;
    closing = true;
    socket.disconnect();
  } catch (e) {
    r.error = String((e && e.message) || e);
    if (socket) socket.disconnect();
  }
  return r;
}

async function runCase(browser, c) {
  const consoleLines = [];
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on('console', (msg) => consoleLines.push(`console.${msg.type()}: ${msg.text()}`));
    page.on('pageerror', (err) => consoleLines.push(`uncaught: ${err.message}`));
    let result;
    try {
      const res = await page.goto(c.url);
      if (!res || res.status() !== 200) throw new Error(`GET page: ${res ? res.status() : 'no response'}`);
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`case timed out after ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS);
      });
      try {
        result = await Promise.race([page.evaluate(c.page === 'expiry' ? pageExpiry : pageCase, STEP_TIMEOUT_MS), timeout]);
      } finally {
        clearTimeout(timer);
      }
    } catch (e) {
      result = { error: String((e && e.message) || e) };
    }
    const line = { case: c.name, result };
    if (result.error) line.console = consoleLines;
    console.log(JSON.stringify(line));
  } finally {
    await context.close();
  }
}

async function main() {
  const args = process.argv.slice(2);
  const parallel = args[0] === '--parallel';
  if (parallel) args.shift();
  if (args.length !== 1) {
    console.error('usage: node browser-matrix.js [--parallel] CASES_JSON');
    process.exit(2);
  }
  const cases = JSON.parse(args[0]);
  let browser = null;
  const timer = setTimeout(async () => {
    console.error(`browser-matrix.js: timed out after ${TOTAL_TIMEOUT_MS} ms`);
    if (browser) await browser.close().catch(() => {});
    process.exit(1);
  }, TOTAL_TIMEOUT_MS);
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    if (parallel) await Promise.all(cases.map((c) => runCase(browser, c)));
    else for (const c of cases) await runCase(browser, c);
  } catch (err) {
    console.error(`browser-matrix.js: ${err.stack || err}`);
    process.exitCode = 1;
  } finally {
    if (browser) await browser.close().catch(() => {});
    clearTimeout(timer);
  }
}

main();
