#!/usr/bin/env node
// client.js drives ONE socket.io-client connection for herald's Go tests
// (see internal/nodeclient). It is controlled by JSON lines on stdin and
// reports JSON lines on stdout, one object per line.
//
// Usage: node client.js '<json options>'
//
// Options: {url, path?, transports?, upgrade?, auth?, extraHeaders?, query?,
// reconnection? (default false), timeout?, clientPackage?, authCallback?,
// parser?, failover?, ...}.
// Every key except url, clientPackage, authCallback, parser and failover is
// passed to io() as is; forceNew is always true and reconnection defaults to
// false.
//   parser: "default" (socket.io-parser) or "msgpack", which gives io() the
//     parser option require("socket.io-msgpack-parser").
//   clientPackage: the npm package to require, default "socket.io-client";
//     package.json pins older 4.x releases under aliases such as
//     "socket.io-client-4.0" (see there).
//   authCallback: true gives io() auth as a function (cb) => cb(latest),
//     where latest is the auth option, then whatever setAuth set last; the
//     client calls it on every (re)connection.
//   failover: a list of URLs (other nodes of a cluster) that reconnection
//     attempts go through in turn, starting after url's place in the list
//     (or at its start), as a load balancer would spread them.
//
// Commands that need an API the chosen client lacks (socket.timeout() before
// 4.4, socket.emitWithAck() and the ackTimeout option before 4.6) print an
// {"type":"error"} line naming the API, with the command's "id" when it had
// one, and do nothing else.
//
// Printed:
//   {"type":"connect","id":..,"transport":"websocket|polling","recovered":bool,
//    "url":..,"at":ms}  (url: the node, at: Date.now())
//   {"type":"upgrade","transport":"websocket"}
//   {"type":"connect_error","message":..,"data":..}
//   {"type":"disconnect","reason":..,"description":..,"at":ms}
//   {"type":"event","event":..,"args":[..],"hasAck":bool,"seq":N,"autoAcked":bool}
//   {"type":"reconnect_attempt","attempt":N} {"type":"reconnect","attempt":N}
//   {"type":"reconnect_error","message":..} {"type":"reconnect_failed"}
//   {"type":"ack","id":K,"args":[..]} {"type":"ack_error","id":K,"message":..}
//   {"type":"count","event":..,"n":N,"inOrder":bool,"lastSeq":N|null}
//   {"type":"info","package":..,"version":..,"features":{timeout,emitWithAck,recovered}}
//   {"type":"error","message":..,"id"?:K}
//
// Commands (stdin):
//   {"cmd":"emit","event":..,"args":[..]}
//   {"cmd":"emitWithAck","id":K,"event":..,"args":[..],"timeoutMs":T,"volatile":bool}
//                                   (callback API; timeoutMs uses socket.timeout(),
//                                    volatile socket.volatile without timeoutMs)
//   {"cmd":"emitWithAckPromise","id":K,"event":..,"args":[..],"timeoutMs":T}
//                                   (socket.emitWithAck(), 4.6+; prints ack or ack_error)
//   {"cmd":"info"}
//   {"cmd":"ack","seq":N,"args":[..]}
//   {"cmd":"autoAck","event":..,"args":[..]}
//   {"cmd":"countOnly","event":..}   (resets the counter of that event)
//   {"cmd":"report","event":..}
//   {"cmd":"disconnect","nsp"?:..} {"cmd":"connect"} {"cmd":"setAuth","auth":{..}}
//   {"cmd":"openNamespace","nsp":"/x","auth":{..}}  (a socket of another namespace on
//                                    the same connection; its output lines carry "nsp",
//                                    and "emit", "emitWithAck" and "disconnect" take "nsp")
//   {"cmd":"drop","url"?:..}        (close the connection as a network failure
//                                    would; reconnect to url if given)
//   {"cmd":"close"}                  (disconnect and exit 0; so does EOF on stdin)
//
// Binary values are written as {"$binary":"<base64>"}, and such an object in
// the args of a command is sent as a Buffer.
"use strict";

const readline = require("node:readline");

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

function fail(message, id) {
  const msg = { type: "error", message: String(message) };
  if (id !== undefined && id !== null) {
    msg.id = id;
  }
  out(msg);
}

// CommandError is a command that failed; id is the command's id, if any.
class CommandError extends Error {
  constructor(message, id) {
    super(message);
    this.id = id;
  }
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

function binaryReviver(key, value) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$binary" && typeof value.$binary === "string") {
      return Buffer.from(value.$binary, "base64");
    }
  }
  return value;
}

function argsOf(cmd) {
  if (cmd.args === undefined || cmd.args === null) {
    return [];
  }
  if (!Array.isArray(cmd.args)) {
    throw new Error(`${cmd.cmd}: args must be an array`);
  }
  return cmd.args;
}

function requireString(cmd, field) {
  if (typeof cmd[field] !== "string" || cmd[field] === "") {
    throw new Error(`${cmd.cmd}: ${field} must be a non-empty string`);
  }
  return cmd[field];
}

let opts;
try {
  opts = JSON.parse(process.argv[2] || "", binaryReviver);
  if (!opts || typeof opts !== "object" || typeof opts.url !== "string") {
    throw new Error("options must be a JSON object with a string url");
  }
} catch (err) {
  fail(`bad options: ${err.message}`);
  process.exit(2);
}

const { url, clientPackage = "socket.io-client", authCallback = false, parser = "default", failover = [], ...ioOpts } = opts;
if (!Array.isArray(failover) || !failover.every((u) => typeof u === "string")) {
  fail("bad options: failover must be an array of URL strings");
  process.exit(2);
}
let io;
let clientVersion;
if (parser === "msgpack") {
  ioOpts.parser = require("socket.io-msgpack-parser");
} else if (parser !== "default") {
  fail(`bad options: parser must be "default" or "msgpack", got ${JSON.stringify(parser)}`);
  process.exit(2);
}
try {
  if (typeof clientPackage !== "string" || !/^socket\.io-client(-[0-9][0-9.]*)?$/.test(clientPackage)) {
    throw new Error(`clientPackage must be "socket.io-client" or an alias "socket.io-client-X.Y", got ${JSON.stringify(clientPackage)}`);
  }
  ({ io } = require(clientPackage));
  clientVersion = require(`${clientPackage}/package.json`).version;
  if (typeof io !== "function") {
    throw new Error(`${clientPackage} exports no io()`);
  }
} catch (err) {
  fail(`bad options: clientPackage: ${err.message}`);
  process.exit(2);
}
let latestAuth = ioOpts.auth;
if (authCallback) {
  ioOpts.auth = (cb) => cb(latestAuth === undefined ? {} : latestAuth);
}
if (ioOpts.reconnection === undefined) {
  ioOpts.reconnection = false;
}
ioOpts.forceNew = true;
const ackTimeoutDefault = ioOpts.ackTimeout !== undefined;

const socket = io(url, ioOpts);
const manager = socket.io;
const features = {
  timeout: typeof socket.timeout === "function", // 4.4+
  emitWithAck: typeof socket.emitWithAck === "function", // 4.6+, as is the ackTimeout option
  recovered: "recovered" in socket, // 4.6+
};
const clientName = `${clientPackage} ${clientVersion}`;

function requireFeature(name, what, id) {
  if (!features[name]) {
    throw new CommandError(`${what} is not supported by ${clientName}`, id);
  }
}

let seq = 0;
const pendingAcks = new Map(); // seq -> ack callback of an incoming event
const autoAcks = new Map(); // event -> args
const counters = new Map(); // event -> {n, inOrder, lastSeq}

socket.on("connect", () => {
  const engine = manager.engine;
  out({
    type: "connect",
    id: socket.id,
    transport: engine && engine.transport ? engine.transport.name : null,
    recovered: Boolean(socket.recovered),
    url: manager.uri,
    at: Date.now(),
  });
});

socket.on("connect_error", (err) => {
  out({
    type: "connect_error",
    message: err && err.message,
    data: err && err.data !== undefined ? err.data : null,
  });
});

socket.on("disconnect", (reason, details) => {
  const msg = { type: "disconnect", reason, at: Date.now() };
  if (details && details.description !== undefined) {
    const d = details.description;
    msg.description = d instanceof Error ? d.message : typeof d === "object" ? undefined : String(d);
  }
  out(msg);
});

manager.on("open", () => {
  manager.engine.on("upgrade", (transport) => {
    out({ type: "upgrade", transport: transport && transport.name });
  });
});
// Each reconnection attempt goes to the next failover URL: the manager builds
// its next connection from manager.uri.
let failoverNext = failover.indexOf(url) + 1;
manager.on("reconnect_attempt", (attempt) => {
  if (failover.length > 0) {
    manager.uri = failover[failoverNext % failover.length];
    failoverNext++;
  }
  out({ type: "reconnect_attempt", attempt });
});
manager.on("reconnect", (attempt) => out({ type: "reconnect", attempt }));
manager.on("reconnect_error", (err) => out({ type: "reconnect_error", message: err && err.message }));
manager.on("reconnect_failed", () => out({ type: "reconnect_failed" }));

socket.onAny((event, ...args) => {
  let ack = null;
  if (args.length > 0 && typeof args[args.length - 1] === "function") {
    ack = args.pop();
  }
  const n = ++seq;
  let autoAcked = false;
  if (ack && autoAcks.has(event)) {
    ack(...autoAcks.get(event));
    autoAcked = true;
  } else if (ack) {
    pendingAcks.set(n, ack);
  }

  const counter = counters.get(event);
  if (counter) {
    counter.n++;
    const first = args[0];
    const s = first && typeof first === "object" ? first.seq : undefined;
    if (typeof s !== "number" || (counter.lastSeq !== null && s <= counter.lastSeq)) {
      counter.inOrder = false;
    }
    if (typeof s === "number") {
      counter.lastSeq = s;
    }
    return;
  }
  out({ type: "event", event, args, hasAck: ack !== null, seq: n, autoAcked });
});

// Sockets of other namespaces on the same connection, by name (openNamespace).
const namespaces = new Map();

// socketFor returns the socket a command targets: the namespace's of
// cmd.nsp when given, the main one otherwise.
function socketFor(cmd) {
  if (cmd.nsp === undefined || cmd.nsp === null) {
    return socket;
  }
  const s = namespaces.get(cmd.nsp);
  if (!s) {
    throw new CommandError(`no socket for namespace ${JSON.stringify(cmd.nsp)}: openNamespace first`, cmd.id);
  }
  return s;
}

// openNamespace connects a socket of another namespace over the main
// socket's manager (one connection); its messages carry "nsp".
function openNamespace(cmd) {
  const nsp = requireString(cmd, "nsp");
  if (!nsp.startsWith("/") || namespaces.has(nsp)) {
    throw new Error(`openNamespace: ${JSON.stringify(nsp)} is not a new namespace name`);
  }
  const s = manager.socket(nsp, { auth: cmd.auth || {} });
  namespaces.set(nsp, s);
  s.on("connect", () => out({ type: "connect", nsp, id: s.id, recovered: Boolean(s.recovered) }));
  s.on("connect_error", (err) =>
    out({ type: "connect_error", nsp, message: err && err.message, data: err && err.data !== undefined ? err.data : null }),
  );
  s.on("disconnect", (reason) => out({ type: "disconnect", nsp, reason }));
  s.onAny((event, ...args) => {
    let ack = null;
    if (args.length > 0 && typeof args[args.length - 1] === "function") {
      ack = args.pop();
    }
    const n = ++seq;
    if (ack && autoAcks.has(event)) {
      ack(...autoAcks.get(event));
    } else if (ack) {
      pendingAcks.set(n, ack);
    }
    out({ type: "event", nsp, event, args, hasAck: ack !== null, seq: n });
  });
  if (!s.connected && !s.active) {
    s.connect();
  }
}

const commands = {
  emit(cmd) {
    socketFor(cmd).emit(requireString(cmd, "event"), ...argsOf(cmd));
  },
  openNamespace,
  emitWithAck(cmd) {
    const id = cmd.id;
    const event = requireString(cmd, "event");
    const args = argsOf(cmd);
    const timeoutMs = Number(cmd.timeoutMs) || 0;
    if (timeoutMs > 0) {
      requireFeature("timeout", "socket.timeout()", id);
    } else if (ackTimeoutDefault) {
      requireFeature("emitWithAck", "the ackTimeout option", id);
    }
    if (timeoutMs > 0 || ackTimeoutDefault) {
      const target = timeoutMs > 0 ? socket.timeout(timeoutMs) : socket;
      target.emit(event, ...args, (err, ...resp) => {
        if (err) {
          out({ type: "ack_error", id, message: err.message || String(err) });
        } else {
          out({ type: "ack", id, args: resp });
        }
      });
    } else {
      const target = cmd.volatile ? socketFor(cmd).volatile : socketFor(cmd);
      target.emit(event, ...args, (...resp) => out({ type: "ack", id, args: resp }));
    }
  },
  emitWithAckPromise(cmd) {
    const id = cmd.id;
    const event = requireString(cmd, "event");
    const args = argsOf(cmd);
    const timeoutMs = Number(cmd.timeoutMs) || 0;
    requireFeature("emitWithAck", "socket.emitWithAck()", id);
    if (timeoutMs > 0) {
      requireFeature("timeout", "socket.timeout()", id);
    }
    const target = timeoutMs > 0 ? socket.timeout(timeoutMs) : socket;
    target.emitWithAck(event, ...args).then(
      (resp) => out({ type: "ack", id, args: [resp] }),
      (err) => out({ type: "ack_error", id, message: (err && err.message) || String(err) }),
    );
  },
  info() {
    out({ type: "info", package: clientPackage, version: clientVersion, features });
  },
  ack(cmd) {
    const ack = pendingAcks.get(cmd.seq);
    if (!ack) {
      throw new Error(`ack: no pending ack callback for seq ${cmd.seq}`);
    }
    pendingAcks.delete(cmd.seq);
    ack(...argsOf(cmd));
  },
  autoAck(cmd) {
    autoAcks.set(requireString(cmd, "event"), argsOf(cmd));
  },
  countOnly(cmd) {
    counters.set(requireString(cmd, "event"), { n: 0, inOrder: true, lastSeq: null });
  },
  report(cmd) {
    const event = requireString(cmd, "event");
    const c = counters.get(event) || { n: 0, inOrder: true, lastSeq: null };
    out({ type: "count", event, n: c.n, inOrder: c.inOrder, lastSeq: c.lastSeq });
  },
  disconnect(cmd) {
    socketFor(cmd).disconnect();
  },
  connect() {
    socket.connect();
  },
  // drop closes the underlying connection as a network failure would (the
  // server sees "transport close"), so that the manager reconnects, to
  // cmd.url when given (another node). Needs reconnection: true.
  drop(cmd) {
    if (cmd.url) {
      socket.io.uri = String(cmd.url);
    }
    socket.io.engine.close();
  },
  setAuth(cmd) {
    if (!cmd.auth || typeof cmd.auth !== "object" || Array.isArray(cmd.auth)) {
      throw new Error("setAuth: auth must be an object");
    }
    if (authCallback) {
      latestAuth = cmd.auth;
    } else {
      socket.auth = cmd.auth;
    }
  },
  close() {
    shutdown();
  },
};

let closing = false;

// shutdown disconnects (so the server sees "client namespace disconnect"),
// then lets the process end once the connection is closed, or after 2s.
function shutdown() {
  if (closing) {
    return;
  }
  closing = true;
  rl.close();
  process.stdin.destroy();
  socket.disconnect();
  setTimeout(() => process.exit(0), 2000).unref();
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => {
  if (closing || line.trim() === "") {
    return;
  }
  let cmd;
  try {
    cmd = JSON.parse(line, binaryReviver);
  } catch (err) {
    fail(`bad command: ${err.message}`);
    return;
  }
  if (!cmd || typeof cmd !== "object" || Array.isArray(cmd)) {
    fail("bad command: not a JSON object");
    return;
  }
  const handler = Object.prototype.hasOwnProperty.call(commands, cmd.cmd) ? commands[cmd.cmd] : null;
  if (!handler) {
    fail(`unknown cmd: ${JSON.stringify(cmd.cmd)}`);
    return;
  }
  try {
    handler(cmd);
  } catch (err) {
    fail(err && err.message ? err.message : String(err), err instanceof CommandError ? err.id : cmd.id);
  }
});
rl.on("close", shutdown);

process.on("uncaughtException", (err) => {
  fail(`uncaught: ${err && err.stack ? err.stack : String(err)}`);
});
process.on("unhandledRejection", (err) => {
  fail(`unhandled rejection: ${err && err.message ? err.message : String(err)}`);
});
// A reader that went away must not turn into an endless stream of errors.
process.stdout.on("error", () => process.exit(0));
