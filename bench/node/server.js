#!/usr/bin/env node
// server.js is the Node side of the herald vs Node socket.io comparison: a
// socket.io 4.8 server with the behaviour that ../SPEC.md gives both servers,
// written the way a Node service would be, so that the load generator
// (bench/cmd/load) drives it and bench/cmd/heraldserver the same way.
//
//   npm ci && BENCH_ADDR=127.0.0.1:0 BENCH_JWT_SECRET=s node server.js
//
// Environment:
//   BENCH_ADDR        listen address (default 127.0.0.1:0, any free port)
//   BENCH_JWT_SECRET  HS256 secret of the tokens (sub = user id, exp); required,
//                     at least 16 bytes (herald's minimum)
//   REDIS_URL         redis://host:port/db: join the cluster on that Redis
//                     (@socket.io/redis-adapter over pub/sub); unset = one node
//
// Once ready it prints one line, "listening on http://HOST:PORT"; on SIGTERM
// or SIGINT it closes every connection and exits 0.
//
// Like herald, a socket whose CONNECT carries a valid {token} joins the room
// "user:" + sub and is greeted with "authenticated" {userId, timestamp}; an
// invalid or missing token gets connect_error "unauthorized" with data
// {code: "token_invalid"}. Every payload sent carries "timestamp" first, as
// herald's do.
//
// HTTP, besides socket.io at /socket.io/:
//   POST /bench/emit {"prefix":"u","from":0,"to":1000,"count":20,"pad":0,"seq":0}
//        emits "bench" {timestamp, seq, sentAt (µs since the epoch), pad}
//        count times to each user prefix+N, N in [from, to), round i with
//        seq seq+i ("seq" is optional, 0 when absent), and answers
//        {"emitted":E,"tookUs":T}; 400 {"error":..} on bad input
//   GET  /api/v1/websocket/stats   herald's shape, from this node's counters
//   GET  /bench/runtime            {"goroutines":0,"heapInuse":B,"rss":B}
"use strict";

const crypto = require("node:crypto");
const http = require("node:http");
const { performance } = require("node:perf_hooks");
const jwt = require("jsonwebtoken");
const { Server } = require("socket.io");

const MAX_EMITS = 10000000; // bounds count*(to-from) of one POST /bench/emit
const MAX_PAD = 1 << 20; // bytes
const MAX_SEQ = 1000000000; // bounds the seq of one POST /bench/emit
const MAX_BODY = 64 << 10; // bytes

function die(message) {
  process.stderr.write(`node bench server: ${message}\n`);
  process.exit(1);
}

const secret = process.env.BENCH_JWT_SECRET || "";
if (secret === "") {
  die("BENCH_JWT_SECRET is required");
}
if (Buffer.byteLength(secret) < 16) {
  // herald's auth refuses shorter HS256 secrets: so does this server.
  die(`BENCH_JWT_SECRET: secret has ${Buffer.byteLength(secret)} bytes, want at least 16`);
}
// A KeyObject, built once: with a string secret jsonwebtoken 9 builds one
// on every verify, which costs milliseconds of CPU.
const key = crypto.createSecretKey(Buffer.from(secret));
const redisUrl = process.env.REDIS_URL || "";
const { host, port } = parseAddr(process.env.BENCH_ADDR || "127.0.0.1:0");

// parseAddr splits "host:port", "[v6]:port" or ":port" like Go's net.Listen.
function parseAddr(addr) {
  const i = addr.lastIndexOf(":");
  const p = Number(addr.slice(i + 1));
  if (i < 0 || addr.slice(i + 1) === "" || !Number.isInteger(p) || p < 0 || p > 65535) {
    die(`BENCH_ADDR ${JSON.stringify(addr)}: want host:port`);
  }
  const h = addr.slice(0, i).replace(/^\[(.*)\]$/, "$1");
  return { host: h === "" ? undefined : h, port: p };
}

// nowUs is the wall clock in integer microseconds since the Unix epoch, with
// microsecond resolution (Date.now() has milliseconds only).
function nowUs() {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

function reply(res, status, body) {
  const b = JSON.stringify(body) + "\n";
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Cache-Control": "no-store",
    "Content-Length": Buffer.byteLength(b),
  });
  res.end(b);
}

// Per-node presence: user -> connected sockets, as herald counts.
const users = new Map();
let connected = 0;

let io;
let pubClient = null;
let subClient = null;

// checkEmit returns the request's fields, or a string saying what is wrong.
function checkEmit(body) {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return "body: must be a JSON object";
  }
  const prefix = body.prefix ?? "";
  if (typeof prefix !== "string") {
    return "prefix: must be a string";
  }
  const f = {};
  for (const name of ["from", "to", "count", "pad", "seq"]) {
    f[name] = body[name] ?? 0;
    if (!Number.isSafeInteger(f[name])) {
      return `${name}: must be an integer`;
    }
  }
  const span = f.to - f.from;
  if (span < 0) {
    return "to: must not be less than from";
  }
  if (f.count < 1) {
    return "count: must be at least 1";
  }
  if (span > MAX_EMITS || f.count > MAX_EMITS / Math.max(span, 1)) {
    return `count*(to-from): must be at most ${MAX_EMITS} (and count too)`;
  }
  if (f.pad < 0 || f.pad > MAX_PAD) {
    return `pad: must be 0..${MAX_PAD}`;
  }
  if (f.seq < 0 || f.seq > MAX_SEQ) {
    return `seq: must be 0..${MAX_SEQ}`;
  }
  return { prefix, ...f };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error("http: request body too large"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

async function postEmit(req, res) {
  let r;
  try {
    r = checkEmit(JSON.parse(await readBody(req)));
  } catch (err) {
    r = `body: ${err.message}`;
  }
  if (typeof r === "string") {
    reply(res, 400, { error: r });
    return;
  }
  const pad = "x".repeat(r.pad);
  const start = process.hrtime.bigint();
  for (let i = 0; i < r.count; i++) {
    for (let n = r.from; n < r.to; n++) {
      const sentAt = nowUs();
      io.to("user:" + r.prefix + n).emit("bench", {
        timestamp: new Date().toISOString(),
        seq: r.seq + i,
        sentAt,
        pad,
      });
    }
  }
  const tookUs = Number((process.hrtime.bigint() - start) / 1000n);
  if (pubClient) {
    // The adapter PUBLISHes within emit() without returning the promise; a
    // PING on the same connection is answered after the last of them, so
    // the answer means, as herald's does, that Redis has every message.
    await pubClient.ping();
  }
  reply(res, 200, { emitted: r.count * (r.to - r.from), tookUs });
}

function stats(res) {
  // This node's counts: in a cluster they are not the cluster's (herald's
  // are), which the load generator does not need.
  const c = { connected, users: users.size };
  reply(res, 200, {
    success: true,
    data: {
      ...c,
      nodes: 1,
      staleNodes: 0,
      scope: pubClient ? "node" : "cluster",
      partial: pubClient !== null,
      node: c,
      timestamp: new Date().toISOString(),
    },
  });
}

function runtime(res) {
  const m = process.memoryUsage();
  reply(res, 200, { goroutines: 0, heapInuse: m.heapUsed, rss: m.rss });
}

// socket.io answers its own path before this handler runs.
const httpServer = http.createServer((req, res) => {
  const path = (req.url || "").split("?")[0];
  const routes = {
    "/bench/emit": ["POST", () => postEmit(req, res)],
    "/bench/runtime": ["GET", () => runtime(res)],
    "/api/v1/websocket/stats": ["GET", () => stats(res)],
  };
  const route = routes[path];
  if (!route) {
    reply(res, 404, { error: "not found" });
    return;
  }
  if (req.method !== route[0] && !(route[0] === "GET" && req.method === "HEAD")) {
    res.setHeader("Allow", route[0]);
    reply(res, 405, { error: `use ${route[0]}` });
    return;
  }
  Promise.resolve(route[1]()).catch((err) => {
    if (!res.headersSent) {
      reply(res, 500, { error: err.message });
    }
  });
});

function setUp() {
  io.use((socket, next) => {
    const token = socket.handshake.auth && socket.handshake.auth.token;
    let sub;
    try {
      if (typeof token !== "string" || token === "") {
        throw new Error("token missing");
      }
      sub = jwt.verify(token, key, { algorithms: ["HS256"] }).sub;
      if (typeof sub !== "string" || sub === "") {
        throw new Error("no sub");
      }
    } catch {
      const err = new Error("unauthorized");
      err.data = { code: "token_invalid" };
      next(err);
      return;
    }
    socket.data.userId = sub;
    next();
  });
  io.on("connection", (socket) => {
    const userId = socket.data.userId;
    socket.join("user:" + userId);
    connected++;
    users.set(userId, (users.get(userId) || 0) + 1);
    socket.on("disconnect", () => {
      connected--;
      const n = users.get(userId) - 1;
      if (n > 0) {
        users.set(userId, n);
      } else {
        users.delete(userId);
      }
    });
    socket.emit("authenticated", { userId, timestamp: new Date().toISOString() });
  });
}

async function main() {
  const options = {};
  if (redisUrl !== "") {
    const { createClient } = require("redis");
    const { createAdapter } = require("@socket.io/redis-adapter");
    pubClient = createClient({ url: redisUrl });
    subClient = pubClient.duplicate();
    pubClient.on("error", (err) => process.stderr.write(`redis pub: ${err.message}\n`));
    subClient.on("error", (err) => process.stderr.write(`redis sub: ${err.message}\n`));
    await Promise.all([pubClient.connect(), subClient.connect()]);
    options.adapter = createAdapter(pubClient, subClient);
  }
  io = new Server(httpServer, options);
  setUp();
  if (subClient) {
    // The adapter PSUBSCRIBEs without returning the promise; node-redis
    // sends a client's commands in order, so once this PING is answered
    // the subscription is up and other nodes' emits reach this one.
    await subClient.ping();
  }
  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(port, host, () => {
      httpServer.off("error", reject);
      resolve();
    });
  });
  const a = httpServer.address();
  const h = a.family === "IPv6" || a.family === 6 ? `[${a.address}]` : a.address;
  process.stdout.write(`listening on http://${h}:${a.port}\n`);
}

let stopping = false;
async function shutdown() {
  if (stopping) {
    return;
  }
  stopping = true;
  // Exit 0 promptly even if a close hangs.
  setTimeout(() => process.exit(0), 5000).unref();
  if (io) {
    await io.close(); // disconnects every socket, closes the HTTP server
  }
  await Promise.allSettled([pubClient, subClient].filter(Boolean).map((c) => c.quit()));
  process.exit(0);
}

process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
main().catch((err) => die(err.message));
