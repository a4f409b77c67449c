#!/usr/bin/env node
// redis-emitter.js drives ONE @socket.io/redis-emitter Emitter for herald's
// Go tests (see internal/nodeclient/script.go). It is controlled by JSON lines
// on stdin and reports JSON lines on stdout, one object per line.
//
// Usage: node redis-emitter.js '<json options>'
//
// Options: {redisUrl, key? (channel prefix, default "socket.io"),
// sharded? (refused: @socket.io/redis-emitter 5.x publishes with PUBLISH
// only and has no sharded mode)}.
//
// The Emitter is new Emitter(client, {key}) over a node-redis client whose
// publish() is wrapped, so that every command can report what was published
// (channel, payload bytes, number of receivers) and any error of the PUBLISH.
//
// Printed:
//   {"type":"ready"}
//   {"type":"emitted","id":K,"published":[{"channel":..,"payload":"<base64>","receivers":N}]}
//   {"type":"error","id":K,"message":..}   (id is null for a bad line)
//
// Commands (stdin); every one but close takes an id K, echoed in its answer:
//   {"cmd":"emit","id":K,"to":["room",..]|null,"except":["room",..]?,
//    "event":..,"args":[..],"nsp":"/"?,"volatile":bool?,"compress":bool?}
//        -> emitter.of(nsp).to(to).except(except).emit(event, ...args);
//           no to (or an empty one) broadcasts to every client of nsp
//   {"cmd":"socketsJoin","id":K,"to":[..]?,"except":[..]?,"rooms":[..],"nsp":..?}
//   {"cmd":"socketsLeave","id":K,"to":[..]?,"except":[..]?,"rooms":[..],"nsp":..?}
//   {"cmd":"disconnectSockets","id":K,"to":[..]?,"except":[..]?,"close":bool?,"nsp":..?}
//   {"cmd":"serverSideEmit","id":K,"event":..,"args":[..],"nsp":..?}
//   {"cmd":"close"}   (quit the Redis client and exit 0; so does EOF on stdin)
//
// "emitted" is printed once Redis has answered every PUBLISH of the command,
// so the message has reached the subscribers' connections by then.
//
// In args, {"$binary":"<base64>"} is sent as a Buffer and {"$date":ms|"ISO"}
// as a Date (notepack.io encodes it as a msgpack timestamp).
"use strict";

const readline = require("node:readline");
const { createClient } = require("redis");
const { Emitter } = require("@socket.io/redis-emitter");

// Writes to a pipe are synchronous on Linux, so every line is flushed at once.
function out(obj) {
  let line;
  try {
    line = JSON.stringify(obj);
  } catch (err) {
    line = JSON.stringify({ type: "error", id: null, message: `cannot serialise ${obj && obj.type}: ${err.message}` });
  }
  process.stdout.write(line + "\n");
}

function fail(id, message) {
  out({ type: "error", id: id === undefined ? null : id, message: String(message) });
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

function argsOf(cmd) {
  if (cmd.args === undefined || cmd.args === null) {
    return [];
  }
  if (!Array.isArray(cmd.args)) {
    throw new Error(`${cmd.cmd}: args must be an array`);
  }
  return cmd.args;
}

function roomsOf(cmd, field) {
  const v = cmd[field];
  if (v === undefined || v === null) {
    return [];
  }
  if (!Array.isArray(v) || v.some((r) => typeof r !== "string")) {
    throw new Error(`${cmd.cmd}: ${field} must be an array of strings`);
  }
  return v;
}

function requireString(cmd, field) {
  if (typeof cmd[field] !== "string" || cmd[field] === "") {
    throw new Error(`${cmd.cmd}: ${field} must be a non-empty string`);
  }
  return cmd[field];
}

let opts;
try {
  opts = JSON.parse(process.argv[2] || "");
  if (!opts || typeof opts !== "object" || typeof opts.redisUrl !== "string") {
    throw new Error("options must be a JSON object with a string redisUrl");
  }
  if (opts.key !== undefined && (typeof opts.key !== "string" || opts.key === "")) {
    throw new Error("key must be a non-empty string");
  }
  if (opts.sharded) {
    throw new Error(
      "sharded: @socket.io/redis-emitter has no sharded mode (it only PUBLISHes on the classic channels); " +
        "emit through a node-server.js in sharded mode instead",
    );
  }
} catch (err) {
  fail(null, `bad options: ${err.message}`);
  process.exit(2);
}

const client = createClient({
  url: opts.redisUrl,
  // Bounded: a test whose Redis went away must see errors, not a hang.
  socket: { connectTimeout: 5000, reconnectStrategy: false },
});
client.on("error", (err) => fail(null, `redis: ${err && err.message ? err.message : String(err)}`));

// published collects what the Emitter publishes while one command runs (the
// Emitter calls publish() synchronously and ignores its promise).
let published = null;
const recordingClient = {
  publish(channel, payload) {
    const promise = client.publish(channel, payload);
    const entry = {
      channel,
      payload: Buffer.isBuffer(payload) ? payload.toString("base64") : Buffer.from(String(payload)).toString("base64"),
      promise,
    };
    if (published) {
      published.push(entry);
    } else {
      promise.catch((err) => fail(null, `publish outside a command: ${err.message}`));
    }
    return promise;
  },
};

const root = new Emitter(recordingClient, opts.key === undefined ? {} : { key: opts.key });

function emitterOf(cmd) {
  if (cmd.nsp === undefined || cmd.nsp === null || cmd.nsp === "/") {
    return root;
  }
  return root.of(requireString(cmd, "nsp"));
}

// operatorOf applies to/except; the Emitter and its BroadcastOperator have the
// same to/except methods.
function operatorOf(cmd) {
  let op = emitterOf(cmd);
  const to = roomsOf(cmd, "to");
  const except = roomsOf(cmd, "except");
  if (to.length > 0) {
    op = op.to(to);
  }
  if (except.length > 0) {
    op = op.except(except);
  }
  return op;
}

const commands = {
  emit(cmd) {
    let op = operatorOf(cmd);
    if (cmd.volatile) {
      op = op.volatile;
    }
    if (cmd.compress !== undefined) {
      op = op.compress(Boolean(cmd.compress));
    }
    op.emit(requireString(cmd, "event"), ...argsOf(cmd));
  },
  socketsJoin(cmd) {
    operatorOf(cmd).socketsJoin(roomsOf(cmd, "rooms"));
  },
  socketsLeave(cmd) {
    operatorOf(cmd).socketsLeave(roomsOf(cmd, "rooms"));
  },
  disconnectSockets(cmd) {
    operatorOf(cmd).disconnectSockets(Boolean(cmd.close));
  },
  serverSideEmit(cmd) {
    emitterOf(cmd).serverSideEmit(requireString(cmd, "event"), ...argsOf(cmd));
  },
};

const connected = client.connect();

// Commands run one after the other, once the client is connected, so that
// each reports only its own publications.
let chain = connected.then(
  () => {},
  () => {},
);

async function run(cmd) {
  const id = cmd.id;
  published = [];
  let entries;
  try {
    commands[cmd.cmd](cmd);
  } catch (err) {
    fail(id, err && err.message ? err.message : String(err));
    return;
  } finally {
    entries = published;
    published = null;
  }
  try {
    const receivers = await Promise.all(entries.map((e) => e.promise));
    out({
      type: "emitted",
      id,
      published: entries.map((e, i) => ({ channel: e.channel, payload: e.payload, receivers: receivers[i] })),
    });
  } catch (err) {
    fail(id, `publish: ${err && err.message ? err.message : String(err)}`);
  }
}

let closing = false;

function shutdown() {
  if (closing) {
    return;
  }
  closing = true;
  rl.close();
  process.stdin.destroy();
  setTimeout(() => process.exit(0), 2000).unref();
  chain
    .then(() => (client.isOpen ? client.quit() : undefined))
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
    cmd = JSON.parse(line, reviver);
  } catch (err) {
    fail(null, `bad command: ${err.message}`);
    return;
  }
  if (!cmd || typeof cmd !== "object" || Array.isArray(cmd)) {
    fail(null, "bad command: not a JSON object");
    return;
  }
  if (cmd.cmd === "close") {
    shutdown();
    return;
  }
  if (!Object.prototype.hasOwnProperty.call(commands, cmd.cmd)) {
    fail(cmd.id, `unknown cmd: ${JSON.stringify(cmd.cmd)}`);
    return;
  }
  chain = chain.then(() => run(cmd));
});
rl.on("close", shutdown);

process.on("uncaughtException", (err) => {
  fail(null, `uncaught: ${err && err.stack ? err.stack : String(err)}`);
});
process.on("unhandledRejection", (err) => {
  fail(null, `unhandled rejection: ${err && err.message ? err.message : String(err)}`);
});
// A reader that went away must not turn into an endless stream of errors.
process.stdout.on("error", () => process.exit(0));

connected.then(
  () => {
    if (!closing) {
      out({ type: "ready" });
    }
  },
  (err) => {
    fail(null, `redis connect: ${err && err.message ? err.message : String(err)}`);
    process.exit(1);
  },
);
