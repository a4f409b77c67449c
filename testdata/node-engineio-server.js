#!/usr/bin/env node
// node-engineio-server.js runs a bare Node engine.io 6.6 server (the
// engine.io package under socket.io, without Socket.IO) for the differential
// tests of herald's socketio/engineio (TestLikeNode, see
// internal/nodeclient/script.go): every message a client sends comes back to
// it, text as text and binary as binary, as the Go tests' handler does. It
// reports JSON lines on stdout, one object per line, and exits on SIGTERM,
// SIGINT, EOF on stdin or {"cmd":"close"} on stdin.
//
// Usage: node node-engineio-server.js '<json options>'
//
// Options, each engine.io's own default when absent: {pingInterval,
// pingTimeout, upgradeTimeout, maxHttpBufferSize (ms and bytes), transports
// (["polling", "websocket"]), cors (true: the cors package reflects every
// origin, with credentials, as herald's Config.AllowOrigin returning true
// does), path ("/engine.io/")}. The server listens on 127.0.0.1, on a free
// port; other paths answer 404.
//
// Printed:
//   {"type":"listening","port":P}
//   {"type":"connection","sid":..,"transport":..}
//   {"type":"close","sid":..,"reason":..}
//   {"type":"error","message":..}
//
// Commands (JSON lines on stdin; the answer carries the command's "id"):
//   {"cmd":"state","sid":..,"id":N} -> {"type":"state","id":N,"exists":bool,
//        "transport":..,"parked":bool,"posting":bool,"upgrading":bool}
//        (parked: a long-polling GET waits for packets; posting: a POST is
//        reading its body; upgrading: a WebSocket is being upgraded to)
//   {"cmd":"send","sid":..,"data":..,"binary":bool,"id":N} -> {"type":"sent","id":N}
//        (socket.send(data), data as a Buffer of its base64 when binary)
//   {"cmd":"closeSession","sid":..,"id":N} -> {"type":"closed","id":N}
//        (socket.close(): graceful, after what is queued)
//   {"cmd":"close"}
// A command about a sid that is not open answers {"type":"error","id":N,..}.
"use strict";

const http = require("node:http");
const readline = require("node:readline");
const engine = require("engine.io");

// Writes to a pipe are synchronous on Linux, so every line is flushed at once.
function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function fail(message, id) {
  out(id === undefined ? { type: "error", message: String(message) } : { type: "error", id, message: String(message) });
}

let opts;
try {
  opts = JSON.parse(process.argv[2] || "{}");
  if (!opts || typeof opts !== "object" || Array.isArray(opts)) {
    throw new Error("options must be a JSON object");
  }
  for (const k of ["pingInterval", "pingTimeout", "upgradeTimeout", "maxHttpBufferSize"]) {
    if (opts[k] !== undefined && (!Number.isInteger(opts[k]) || opts[k] <= 0)) {
      throw new Error(`${k} must be a positive integer`);
    }
  }
  if (opts.transports !== undefined && !Array.isArray(opts.transports)) {
    throw new Error("transports must be an array");
  }
} catch (err) {
  fail(`bad options: ${err.message}`);
  process.exit(2);
}

const serverOptions = {};
for (const k of ["pingInterval", "pingTimeout", "upgradeTimeout", "maxHttpBufferSize", "transports"]) {
  if (opts[k] !== undefined) {
    serverOptions[k] = opts[k];
  }
}
if (opts.cors) {
  serverOptions.cors = { origin: true, credentials: true };
}

// Requests outside the engine.io path; attach() keeps this listener for them.
const httpServer = http.createServer((req, res) => {
  res.writeHead(404, { "Content-Type": "text/plain" });
  res.end("not found");
});
const server = new engine.Server(serverOptions);
server.attach(httpServer, { path: opts.path || "/engine.io/" });

server.on("connection", (socket) => {
  out({ type: "connection", sid: socket.id, transport: socket.transport.name });
  socket.on("message", (data) => socket.send(data));
  socket.on("close", (reason) => out({ type: "close", sid: socket.id, reason }));
});
server.on("connection_error", (err) => {
  // Refused requests are the tests' business; nothing to report.
  void err;
});

function state(sid) {
  const socket = server.clients[sid];
  if (!socket) {
    return { exists: false };
  }
  const t = socket.transport;
  return {
    exists: true,
    transport: t.name,
    parked: t.name === "polling" && Boolean(t.req),
    posting: t.name === "polling" && Boolean(t.dataReq),
    upgrading: Boolean(socket.upgrading),
  };
}

function command(cmd) {
  const id = cmd.id;
  switch (cmd.cmd) {
    case "state":
      out({ type: "state", id, ...state(cmd.sid) });
      return;
    case "send": {
      const socket = server.clients[cmd.sid];
      if (!socket) {
        fail(`no session ${cmd.sid}`, id);
        return;
      }
      socket.send(cmd.binary ? Buffer.from(String(cmd.data), "base64") : String(cmd.data));
      out({ type: "sent", id });
      return;
    }
    case "closeSession": {
      const socket = server.clients[cmd.sid];
      if (!socket) {
        fail(`no session ${cmd.sid}`, id);
        return;
      }
      socket.close();
      out({ type: "closed", id });
      return;
    }
    default:
      fail(`unknown cmd: ${JSON.stringify(cmd.cmd)}`, id);
  }
}

let closing = false;

// shutdown closes every session and the HTTP server, and exits 0; after 3s
// it exits anyway.
function shutdown() {
  if (closing) {
    return;
  }
  closing = true;
  rl.close();
  process.stdin.destroy();
  setTimeout(() => process.exit(0), 3000).unref();
  server.close();
  httpServer.closeAllConnections();
  httpServer.close(() => process.exit(0));
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
  command(cmd || {});
});
rl.on("close", shutdown);
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

process.on("uncaughtException", (err) => {
  fail(`uncaught: ${err && err.stack ? err.stack : String(err)}`);
});
// A reader that went away must not turn into an endless stream of errors.
process.stdout.on("error", () => process.exit(0));

httpServer.once("error", (err) => {
  fail(`listen: ${err.message}`);
  process.exit(1);
});
httpServer.listen(0, "127.0.0.1", () => {
  if (!closing) {
    out({ type: "listening", port: httpServer.address().port });
  }
});
