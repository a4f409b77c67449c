#!/usr/bin/env node
// browser-matrix.js runs socket.io-client browser bundles in headless
// Chromium against a herald server, for socketio/browser_matrix_test.go. It
// uses playwright-core from this directory's node_modules and the Chromium at
// HERALD_CHROMIUM (default /usr/bin/chromium).
//
// Usage: node browser-matrix.js CASES_JSON
//
// CASES_JSON is an array of {"name": ..., "url": ...}. Each url is a page of
// the Go test's server that loads one client release's bundle and carries
// the case in its query: user, token, transports (comma-separated), upgrade
// (1 or 0). For each case, one at a time and in a fresh browser context, the
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
        result = await Promise.race([page.evaluate(pageCase, STEP_TIMEOUT_MS), timeout]);
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
  if (process.argv.length !== 3) {
    console.error('usage: node browser-matrix.js CASES_JSON');
    process.exit(2);
  }
  const cases = JSON.parse(process.argv[2]);
  let browser = null;
  const timer = setTimeout(async () => {
    console.error(`browser-matrix.js: timed out after ${TOTAL_TIMEOUT_MS} ms`);
    if (browser) await browser.close().catch(() => {});
    process.exit(1);
  }, TOTAL_TIMEOUT_MS);
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    for (const c of cases) await runCase(browser, c);
  } catch (err) {
    console.error(`browser-matrix.js: ${err.stack || err}`);
    process.exitCode = 1;
  } finally {
    if (browser) await browser.close().catch(() => {});
    clearTimeout(timer);
  }
}

main();
