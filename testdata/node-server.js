#!/usr/bin/env node
// node-server.js runs a Node socket.io 4.8 server with @socket.io/redis-adapter
// (or @socket.io/redis-streams-adapter) for herald's Go interop tests (see
// internal/nodeclient/script.go): a stand-in for a legacy Node app that shares
// a Redis with herald. It reports JSON lines on stdout, one object per line,
// and exits on SIGTERM, SIGINT, EOF on stdin or {"cmd":"close"} on stdin.
//
// Usage: node node-server.js '<json options>'
//
// Options: {redisUrl, port? (0 or absent: any free port), mode? ("classic",
// the default, "sharded" or "streams"), key? (channel prefix, default
// "socket.io"), subscriptionMode? (sharded only: "static", "dynamic" (the
// default) or "dynamic-private"), requestsTimeout? (classic only, ms),
// streamName? (streams only, default "socket.io"), maxDisconnectionDuration?
// (ms; when set, connectionStateRecovery is enabled with it and
// skipMiddlewares: false, so a recovered socket passes the middleware too)}.
//
// classic: createAdapter(pub, sub, {key}) over PUBLISH/PSUBSCRIBE.
// sharded: createShardedAdapter(pub, sub, {channelPrefix: key,
//          subscriptionMode}) over SPUBLISH/SSUBSCRIBE (Redis 7).
// streams: createAdapter(pub, {streamName, channelPrefix: key}) of
//          @socket.io/redis-streams-adapter: broadcasts are XADDed to the
//          stream and read with XREAD; sessions of connectionStateRecovery
//          are kept under "sio:session:<pid>". (0.3.x PUBLISHes its
//          ephemeral messages, broadcasts with acks, fetchSockets and
//          serverSideEmit requests and their responses, on "<key>#<nsp>#"
//          and "<key>#<nsp>#<uid>#", and duplicates pub for its reader and
//          its subscriber.)
// pub and sub are node-redis clients; sub is pub.duplicate() (classic and
// sharded only). pub is named "herald-node-server-<pid>" (CLIENT SETNAME),
// and so are the clients the streams adapter duplicates from it.
//
// The server listens on 127.0.0.1 only. Every namespace requires
// socket.handshake.auth.user, a non-empty string (no real JWT: this is a
// stand-in), else the connection fails with next(new Error("unauthorized"));
// a socket joins the room "user:" + user.
//
// HTTP (same port):
//   POST /emit {user?, room?, rooms?, except?, nsp?, event, args?}
//        -> io.of(nsp).to("user:"+user | room | rooms).except(except)
//           .emit(event, ...args); no target broadcasts to the namespace.
//           Answers 200 {"ok":true} once Redis has taken the publication,
//           400 {"ok":false,"error":..} on a bad body.
//   GET /stats -> {"sockets": N}  (sockets connected to this server, "/")
//
// Printed:
//   {"type":"listening","port":P}      (adapter subscribed, server ready; in
//        streams mode, once the adapter's reader is blocked in XREAD, so
//        every entry added from then on reaches this server)
//   {"type":"connection","nsp":..,"id":..,"user":..,"recovered":bool}
//        (once the socket has joined "user:"+user and Redis has confirmed
//         every subscription queued so far: the namespace's channels and,
//         in the sharded dynamic modes, the room's own channel; an "event"
//         of the socket may come before it. recovered: the socket's
//         connection state was restored (socket.recovered))
//   {"type":"disconnect","nsp":..,"id":..,"user":..,"reason":..}
//   {"type":"event","nsp":..,"id":..,"user":..,"event":..,"args":[..]}
//        (events that clients emit to the server)
//   {"type":"error","message":..}
//
// Binary values are written as {"$binary":"<base64>"}; in the args of POST
// /emit such an object is sent as a Buffer and {"$date":ms|"ISO"} as a Date.
"use strict";

const http = require("node:http");
const readline = require("node:readline");
const { createClient } = require("redis");
const { Server } = require("socket.io");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
// @socket.io/redis-streams-adapter is loaded in streams mode only.

// Writes to a pipe are synchronous on Linux, so every line is flushed at once.
function out(obj) {
  let line;
  try {
    line = JSON.stringify(obj, binaryReplacer);
  } catch (err) {
    line = JSON.stringify({ type: "error", message: `cannot serialise ${obj && obj.type}: ${err.message}` });
  }
  process.stdout.write(line + "\n");
}

function fail(message) {
  out({ type: "error", message: String(message) });
}

function errText(err) {
  return err && err.message ? err.message : String(err);
}

// binaryReplacer looks at this[key], the value before Buffer#toJSON ran.
function binaryReplacer(key, value) {
  const orig = this[key];
  if (Buffer.isBuffer(orig)) {
    return { $binary: orig.toString("base64") };
  }
  if (orig instanceof ArrayBuffer) {
    return { $binary: Buffer.from(orig).toString("base64") };
  }
  if (ArrayBuffer.isView(orig)) {
    return { $binary: Buffer.from(orig.buffer, orig.byteOffset, orig.byteLength).toString("base64") };
  }
  return value;
}

function reviver(key, value) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$binary" && typeof value.$binary === "string") {
      return Buffer.from(value.$binary, "base64");
    }
    if (keys.length === 1 && keys[0] === "$date" && (typeof value.$date === "string" || typeof value.$date === "number")) {
      return new Date(value.$date);
    }
  }
  return value;
}

let opts;
try {
  opts = JSON.parse(process.argv[2] || "");
  if (!opts || typeof opts !== "object" || typeof opts.redisUrl !== "string") {
    throw new Error("options must be a JSON object with a string redisUrl");
  }
  opts.mode = opts.mode === undefined ? "classic" : opts.mode;
  if (!["classic", "sharded", "streams"].includes(opts.mode)) {
    throw new Error(`mode must be "classic", "sharded" or "streams", not ${JSON.stringify(opts.mode)}`);
  }
  opts.port = opts.port === undefined ? 0 : opts.port;
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw new Error("port must be an integer in [0, 65535]");
  }
  if (opts.key !== undefined && (typeof opts.key !== "string" || opts.key === "")) {
    throw new Error("key must be a non-empty string");
  }
  opts.key = opts.key || "socket.io";
  opts.subscriptionMode = opts.subscriptionMode || "dynamic";
  if (!["static", "dynamic", "dynamic-private"].includes(opts.subscriptionMode)) {
    throw new Error(`bad subscriptionMode ${JSON.stringify(opts.subscriptionMode)}`);
  }
  if (opts.streamName !== undefined && (typeof opts.streamName !== "string" || opts.streamName === "")) {
    throw new Error("streamName must be a non-empty string");
  }
  opts.streamName = opts.streamName || "socket.io";
  if (
    opts.maxDisconnectionDuration !== undefined &&
    (!Number.isInteger(opts.maxDisconnectionDuration) || opts.maxDisconnectionDuration < 0)
  ) {
    throw new Error("maxDisconnectionDuration must be a non-negative integer (ms)");
  }
} catch (err) {
  fail(`bad options: ${err.message}`);
  process.exit(2);
}

const clientName = `herald-node-server-${process.pid}`;
const redisOptions = {
  url: opts.redisUrl,
  name: clientName,
  // Bounded: a test whose Redis went away must see errors, not a hang.
  socket: { connectTimeout: 5000, reconnectStrategy: false },
};
const sharded = opts.mode === "sharded";
const streams = opts.mode === "streams";
const pubClient = createClient(redisOptions);
// The streams adapter subscribes nowhere through us: no sub client.
const subClient = streams ? null : pubClient.duplicate();
pubClient.on("error", (err) => fail(`redis pub: ${errText(err)}`));
if (subClient) {
  subClient.on("error", (err) => fail(`redis sub: ${errText(err)}`));
}

// subscribed resolves once Redis has answered every (un)subscription the
// adapter has queued on subClient so far: the adapters subscribe without
// returning the promise, and node-redis sends the commands of a client in
// order (PING is allowed in subscriber mode). In streams mode a room needs
// no subscription: the reader gets every entry of the stream.
function subscribed() {
  return subClient ? subClient.ping() : Promise.resolve();
}

// streamReading resolves once one of our clients (the adapter's reader, a
// duplicate of pubClient, so with its name) is blocked in XREAD: the reader
// starts at "$", so entries added before that would never reach us.
async function streamReading() {
  const deadline = Date.now() + 10000;
  for (;;) {
    const list = String(await pubClient.sendCommand(["CLIENT", "LIST"]));
    const reading = list.split("\n").some((line) => {
      const f = {};
      for (const kv of line.trim().split(" ")) {
        const i = kv.indexOf("=");
        if (i > 0) {
          f[kv.slice(0, i)] = kv.slice(i + 1);
        }
      }
      return f.name === clientName && f.cmd === "xread" && (f.flags || "").includes("b");
    });
    if (reading) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error("the streams adapter's reader did not start reading");
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// readJSON reads a request body of at most 1 MiB.
function readJSON(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > 1 << 20) {
        reject(new Error("body too large"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8") || "null", reviver));
      } catch (err) {
        reject(err);
      }
    });
    req.on("error", reject);
  });
}

function reply(res, status, body) {
  const b = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(b) });
  res.end(b);
}

function stringList(body, field) {
  const v = body[field];
  if (v === undefined || v === null) {
    return [];
  }
  if (typeof v === "string") {
    return [v];
  }
  if (!Array.isArray(v) || v.some((r) => typeof r !== "string")) {
    throw new Error(`${field} must be a string or an array of strings`);
  }
  return v;
}

async function postEmit(req, res) {
  let body;
  try {
    body = await readJSON(req);
    if (!body || typeof body !== "object" || Array.isArray(body)) {
      throw new Error("body must be a JSON object");
    }
    if (typeof body.event !== "string" || body.event === "") {
      throw new Error("event must be a non-empty string");
    }
    if (body.args !== undefined && body.args !== null && !Array.isArray(body.args)) {
      throw new Error("args must be an array");
    }
    if (body.user !== undefined && (typeof body.user !== "string" || body.user === "")) {
      throw new Error("user must be a non-empty string");
    }
    if (body.nsp !== undefined && (typeof body.nsp !== "string" || !body.nsp.startsWith("/"))) {
      throw new Error('nsp must be a string starting with "/"');
    }
  } catch (err) {
    reply(res, 400, { ok: false, error: errText(err) });
    return;
  }
  try {
    const rooms = stringList(body, "room").concat(stringList(body, "rooms"));
    if (body.user !== undefined) {
      rooms.push("user:" + body.user);
    }
    const except = stringList(body, "except");
    let op = io.of(body.nsp || "/");
    if (rooms.length > 0) {
      op = op.to(rooms);
    }
    if (except.length > 0) {
      op = op.except(except);
    }
    op.emit(body.event, ...(body.args || []));
    // The adapter sends its PUBLISH/SPUBLISH/XADD synchronously within emit()
    // and does not return the promise; a PING on the same connection is
    // answered after it, so the publication has reached Redis once the PING
    // is answered.
    await pubClient.ping();
    reply(res, 200, { ok: true });
  } catch (err) {
    reply(res, 400, { ok: false, error: errText(err) });
  }
}

const httpServer = http.createServer((req, res) => {
  const path = (req.url || "").split("?")[0];
  if (req.method === "POST" && path === "/emit") {
    postEmit(req, res).catch((err) => reply(res, 500, { ok: false, error: errText(err) }));
    return;
  }
  if (req.method === "GET" && path === "/stats") {
    reply(res, 200, { sockets: io.of("/").sockets.size });
    return;
  }
  reply(res, 404, { ok: false, error: "not found" });
});

let io;

function setUpNamespace(nsp) {
  nsp.use((socket, next) => {
    const auth = socket.handshake.auth;
    const user = auth && auth.user;
    if (typeof user !== "string" || user === "") {
      next(new Error("unauthorized"));
      return;
    }
    socket.data.user = user;
    next();
  });
  nsp.on("connection", (socket) => {
    const user = socket.data.user;
    const room = "user:" + user;
    socket.join(room);
    socket.onAny((event, ...args) => {
      if (args.length > 0 && typeof args[args.length - 1] === "function") {
        args.pop();
      }
      out({ type: "event", nsp: nsp.name, id: socket.id, user, event, args });
    });
    socket.on("disconnect", (reason) => {
      out({ type: "disconnect", nsp: nsp.name, id: socket.id, user, reason });
    });
    // In the sharded dynamic modes, join() has just queued an SSUBSCRIBE to
    // the room's own channel.
    subscribed().then(
      () => {
        if (socket.connected) {
          out({ type: "connection", nsp: nsp.name, id: socket.id, user, recovered: socket.recovered });
        }
      },
      (err) => fail(`connection ${socket.id}: ${errText(err)}`),
    );
  });
}

function makeAdapter() {
  if (streams) {
    const { createAdapter: createStreamsAdapter } = require("@socket.io/redis-streams-adapter");
    return createStreamsAdapter(pubClient, { streamName: opts.streamName, channelPrefix: opts.key });
  }
  if (sharded) {
    return createShardedAdapter(pubClient, subClient, {
      channelPrefix: opts.key,
      subscriptionMode: opts.subscriptionMode,
    });
  }
  return createAdapter(pubClient, subClient, {
    key: opts.key,
    ...(opts.requestsTimeout ? { requestsTimeout: opts.requestsTimeout } : {}),
  });
}

async function main() {
  await Promise.all([pubClient, subClient].filter(Boolean).map((c) => c.connect()));
  const serverOptions = { adapter: makeAdapter() };
  if (opts.maxDisconnectionDuration) {
    serverOptions.connectionStateRecovery = {
      maxDisconnectionDuration: opts.maxDisconnectionDuration,
      skipMiddlewares: false,
    };
  }
  io = new Server(httpServer, serverOptions);
  setUpNamespace(io.of("/"));
  // Other namespaces are created on demand with the same middleware.
  io.of(/^\/.+$/);
  io.on("new_namespace", (nsp) => {
    if (nsp.name !== "/") {
      setUpNamespace(nsp);
    }
  });
  // The "/" adapter has queued its subscriptions in its constructor.
  await subscribed();
  if (streams) {
    await streamReading();
  }
  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(opts.port, "127.0.0.1", () => {
      httpServer.off("error", reject);
      resolve();
    });
  });
  if (!closing) {
    out({ type: "listening", port: httpServer.address().port });
  }
}

let closing = false;

// shutdown closes the server (which disconnects every socket and closes the
// adapters), then the Redis clients, and exits 0; after 3s it exits anyway.
function shutdown() {
  if (closing) {
    return;
  }
  closing = true;
  rl.close();
  process.stdin.destroy();
  setTimeout(() => process.exit(0), 3000).unref();
  const closeIO = io
    ? new Promise((resolve) => io.close(() => resolve()))
    : new Promise((resolve) => (httpServer.listening ? httpServer.close(() => resolve()) : resolve()));
  closeIO
    .then(() =>
      Promise.all([pubClient, subClient].filter(Boolean).map((c) => (c.isOpen ? c.quit().catch(() => {}) : undefined))),
    )
    .catch(() => {})
    .finally(() => process.exit(0));
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => {
  if (closing || line.trim() === "") {
    return;
  }
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (err) {
    fail(`bad command: ${err.message}`);
    return;
  }
  if (cmd && cmd.cmd === "close") {
    shutdown();
    return;
  }
  fail(`unknown cmd: ${JSON.stringify(cmd && cmd.cmd)}`);
});
rl.on("close", shutdown);
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

process.on("uncaughtException", (err) => {
  fail(`uncaught: ${err && err.stack ? err.stack : String(err)}`);
});
process.on("unhandledRejection", (err) => {
  fail(`unhandled rejection: ${errText(err)}`);
});
// A reader that went away must not turn into an endless stream of errors.
process.stdout.on("error", () => process.exit(0));

main().catch((err) => {
  fail(`start: ${errText(err)}`);
  process.exit(1);
});
