// The browser side of herald's demo, in plain JavaScript, no build step.
//
//  1. Get a token: in dev mode from GET /dev/token?user=NAME, otherwise the
//     visitor pastes one.
//  2. Connect with the unmodified socket.io-client: io({auth: {token}}).
//  3. Start work over HTTP (POST /api/v1/jobs and /api/v1/analyses, with
//     "Authorization: Bearer <token>"). Its progress comes back as Socket.IO
//     events, to every tab of the same user.
//
// Text from the server or the visitor is always inserted with textContent,
// never innerHTML.
'use strict';

const $ = (selector) => document.querySelector(selector);

let devMode = false;
let token = '';
let socket = null;
const jobs = new Map(); // jobId -> <li>
const analyses = new Map(); // interviewId -> <li>
const online = new Set(); // userIds known to be online
let me = ''; // our userId, from the "authenticated" event
let devUser = ''; // the user name a dev token was asked for
let renewed = false; // a refused dev token was replaced since the last connect

// api calls the demo's HTTP API and returns its decoded JSON body. On an HTTP
// error it throws an Error built from the body's {"error": {code, message}}.
async function api(method, path, body) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const err = data && data.error;
    throw new Error(err ? `${err.message} (${err.code}, HTTP ${res.status})` : `HTTP ${res.status} ${res.statusText}`);
  }
  return data;
}

// el returns a new element with a class and text.
function el(tag, className, text = '') {
  const e = document.createElement(tag);
  e.className = className;
  e.textContent = text;
  return e;
}

function showError(selector, message = '') {
  $(selector).textContent = message;
}

function setStatus(state, text) {
  $('#status').dataset.state = state;
  $('#status').textContent = text;
}

function showTransport(name) {
  $('#transport').textContent = name ? `via ${name}` : '';
}

async function init() {
  $('#connect-form').addEventListener('submit', onConnect);
  $('#disconnect').addEventListener('click', disconnect);
  $('#job-form').addEventListener('submit', onStartJob);
  $('#analysis-form').addEventListener('submit', onStartAnalysis);

  if (typeof io === 'undefined') {
    showError('#connect-error', 'socket.io-client is not installed: run `npm ci --prefix examples` and reload');
    return;
  }
  let tokens = 'signed with the server\'s HERALD_JWT_SECRET (HS256)';
  try {
    const mode = await api('GET', '/dev/mode');
    devMode = mode.devMode;
    tokens = mode.tokens || tokens;
  } catch (err) {
    showError('#connect-error', `GET /dev/mode: ${err.message}`);
  }
  $('#user-field').hidden = !devMode;
  $('#token-field').hidden = devMode;
  $('#mode').textContent = devMode
    ? 'Dev mode: the server hands out a token for any user name. Open a second tab to see presence.'
    : `Paste a token (${tokens}; user ID in "sub").`;
  $('#connect').disabled = false;
}

async function onConnect(event) {
  event.preventDefault();
  disconnect();
  showError('#connect-error');
  try {
    if (devMode) {
      devUser = $('#user').value.trim();
      token = await devToken(devUser);
    } else {
      token = $('#token').value.trim();
    }
  } catch (err) {
    showError('#connect-error', err.message);
    return;
  }
  me = '';
  jobs.clear();
  analyses.clear();
  $('#jobs').replaceChildren();
  $('#analyses').replaceChildren();
  setStatus('connecting', 'connecting…');
  socket = io({ auth: { token } });
  listen(socket);
  $('#disconnect').disabled = false;
}

async function devToken(user) {
  return (await api('GET', `/dev/token?user=${encodeURIComponent(user)}`)).token;
}

// renewDevToken replaces a dev token the server no longer accepts (the demo
// restarted with another secret) and connects again, once per refusal: a
// second refusal in a row is shown, not retried.
async function renewDevToken(s) {
  renewed = true;
  setStatus('connecting', 'token refused, fetching a new dev token…');
  try {
    token = await devToken(devUser);
  } catch (err) {
    showError('#connect-error', `new dev token: ${err.message}`);
    return;
  }
  if (s !== socket) return; // disconnected meanwhile
  s.auth = { token };
  s.connect();
}

function disconnect() {
  if (socket) {
    socket.disconnect();
    socket = null;
  }
  token = '';
  $('#disconnect').disabled = true;
}

function setConnected(connected) {
  $('#start-job').disabled = !connected;
  $('#start-analysis').disabled = !connected;
  if (!connected) {
    online.clear();
    renderOnline();
    $('#online-count').textContent = '';
  }
}

function listen(s) {
  s.on('connect', () => {
    renewed = false;
    setStatus('connected', me ? `connected as ${me}` : 'connected');
    showTransport(s.io.engine.transport.name);
    s.io.engine.once('upgrade', (transport) => showTransport(transport.name));
    showError('#connect-error');
    setConnected(true);
    refreshStats();
  });
  // err.message is "unauthorized" for a refused token, and err.data.code
  // says why: token_missing, token_invalid or token_expired.
  s.on('connect_error', (err) => {
    const code = err.data && err.data.code;
    // A refused token stops socket.io-client's retries (s.active is false).
    // In dev mode the page can get a new one, so a restart of the demo never
    // strands it.
    if (devMode && !s.active && !renewed && (code === 'token_invalid' || code === 'token_expired')) {
      renewDevToken(s);
      return;
    }
    setStatus('error', s.active ? 'cannot connect, retrying…' : 'connection refused');
    showError('#connect-error', code ? `${err.message} (${code})` : err.message);
  });
  s.on('disconnect', (reason) => {
    setStatus('disconnected', s.active ? `disconnected (${reason}), reconnecting…` : `disconnected (${reason})`);
    showTransport('');
    setConnected(false);
  });

  // Sent by herald once the handshake is accepted.
  s.on('authenticated', ({ userId }) => {
    me = userId;
    setStatus('connected', `connected as ${userId}`);
    online.add(userId);
    renderOnline();
    loadOnline();
    reconcileJobs();
  });

  s.on('job_progress', ({ jobId, progress, message }) => {
    setJob(jobId, 'running', progress, message);
  });
  s.on('job_completed', ({ jobId, result }) => {
    setJob(jobId, 'completed', 100, result === undefined ? '' : `result: ${JSON.stringify(result)}`);
  });
  s.on('job_failed', ({ jobId, error, code }) => {
    setJob(jobId, 'failed', undefined, code === 'job_stalled' ? `stalled: ${error}` : error);
  });

  for (const status of ['started', 'completed', 'failed']) {
    s.on(`analysis:${status}`, ({ interviewId, message }) => setAnalysis(interviewId, status, message));
  }

  // The server tells everyone except the subject; our own tab is added on
  // "authenticated".
  s.on('user_online', ({ userId }) => {
    online.add(userId);
    renderOnline();
    refreshStats();
  });
  s.on('user_offline', ({ userId }) => {
    online.delete(userId);
    renderOnline();
    refreshStats();
  });

  s.onAny((event, ...args) => logEvent(event, args));
}

// numberField returns the number in an <input type=number>, or undefined
// when it is empty, so that the server's default applies.
function numberField(selector) {
  const value = $(selector).value;
  return value === '' ? undefined : Number(value);
}

async function onStartJob(event) {
  event.preventDefault();
  showError('#job-error');
  const body = { steps: numberField('#steps'), delayMs: numberField('#delay'), fail: $('#fail').checked };
  try {
    const { jobId } = await api('POST', '/api/v1/jobs', body);
    jobRow(jobId);
  } catch (err) {
    showError('#job-error', err.message);
  }
}

// jobRow returns the list item of a job, adding it if needed: the events of
// a job may come before the HTTP answer, or to a tab that did not start it.
function jobRow(jobId) {
  let li = jobs.get(jobId);
  if (!li) {
    li = el('li', 'job');
    li.dataset.jobId = jobId;
    li.dataset.state = 'running';
    const bar = el('progress', 'bar');
    bar.max = 100;
    bar.value = 0;
    bar.dataset.progress = '0';
    bar.setAttribute('aria-valuenow', '0');
    bar.setAttribute('aria-label', `progress of ${jobId}`);
    li.append(el('span', 'name', jobId), bar, el('span', 'state', 'running'), el('span', 'detail', 'queued'));
    jobs.set(jobId, li);
    $('#jobs').prepend(li);
  }
  return li;
}

// reconcileJobs runs after every (re)connection. herald has just sent the
// latest state of each running job (as job_progress and analysis:started
// events) and any result missed while away; a bar still "running" that the
// server does not know any more belongs to a server that lost its state
// (restarted without Redis): say so instead of showing it running forever.
async function reconcileJobs() {
  let known;
  try {
    known = new Set((await api('GET', '/api/v1/jobs/states')).data.jobs.map((j) => j.key));
  } catch {
    return; // job state off or unavailable: nothing to compare with
  }
  for (const [jobId, li] of jobs) {
    if (li.dataset.state === 'running' && !known.has(`job:${jobId}`)) {
      setJob(jobId, 'unknown', undefined, 'the server lost track of this job (it restarted)');
    }
  }
}

function setJob(jobId, state, progress, detail) {
  const li = jobRow(jobId);
  li.dataset.state = state;
  li.querySelector('.state').textContent = state;
  li.querySelector('.detail').textContent = detail || '';
  if (progress !== undefined) {
    const bar = li.querySelector('.bar');
    bar.value = progress;
    bar.dataset.progress = String(progress);
    bar.setAttribute('aria-valuenow', String(progress));
  }
}

async function onStartAnalysis(event) {
  event.preventDefault();
  showError('#analysis-error');
  const body = { interviewId: $('#interview').value.trim(), fail: $('#analysis-fail').checked };
  try {
    await api('POST', '/api/v1/analyses', body);
  } catch (err) {
    showError('#analysis-error', err.message);
  }
}

function setAnalysis(interviewId, state, message) {
  let li = analyses.get(interviewId);
  if (!li) {
    li = el('li', 'analysis');
    li.dataset.interviewId = interviewId;
    li.append(el('span', 'name', interviewId), el('span', 'state'), el('span', 'detail'));
    analyses.set(interviewId, li);
    $('#analyses').prepend(li);
  }
  li.dataset.state = state;
  li.querySelector('.state').textContent = state;
  li.querySelector('.detail').textContent = message || '';
}

function renderOnline() {
  const items = [...online].sort().map((userId) => {
    const li = el('li', 'user', userId === me ? `${userId} (you)` : userId);
    li.dataset.userId = userId;
    return li;
  });
  $('#online').replaceChildren(...items);
}

// loadOnline fetches who is already online; user_online/user_offline keep
// the list current from then on.
async function loadOnline() {
  try {
    const { data } = await api('GET', '/api/v1/users/online');
    for (const userId of data.users) online.add(userId);
    renderOnline();
  } catch (err) {
    $('#online-count').textContent = `online users unavailable: ${err.message}`;
  }
}

async function refreshStats() {
  try {
    const { data } = await api('GET', '/api/v1/websocket/stats');
    $('#online-count').textContent = `${data.users} user(s) online, ${data.connected} connection(s).`;
  } catch (err) {
    $('#online-count').textContent = `stats unavailable: ${err.message}`;
  }
}

function logEvent(event, args) {
  const li = el('li', 'entry');
  li.append(el('code', 'event', event), el('span', 'payload', args.map((a) => JSON.stringify(a)).join(' ')));
  $('#log').prepend(li);
  while ($('#log').children.length > 50) $('#log').lastChild.remove();
}

init();
