#!/usr/bin/env node
// thenvoi-reference.mjs: an independent reference implementation of the
// Thenvoi (Band) protocol: a Phoenix Channels V2 WebSocket (push only) and the
// REST Agent and Human APIs, on one port, state in memory.
//
// It was written from docs/THENVOI.md (rules T1–T52), schemas/thenvoi/ and
// fixtures/thenvoi/ alone, without reading the toolkit's mock server, so that
// the conformance suite can be shown to check the protocol rather than the
// mock's quirks, and to serve as a performance baseline. Comments cite the
// rule each piece implements.
//
// Usage: node thenvoi-reference.mjs [port] [--idle-timeout-ms N]
//   port 0 (the default) picks a free port; it listens on 127.0.0.1 only.
//   Prints one JSON line on stdout when ready:
//   {"url": "http://127.0.0.1:PORT", "profile": {"thenvoi": {...}}}
// Extra, outside the public API (T51): DELETE /api/v1/me/chats/{id} deletes a
// room (the caller must be a participant with role owner), emitting T20.

import http from 'node:http';
import crypto from 'node:crypto';
import { WebSocketServer } from 'ws';

// ---------------------------------------------------------------- arguments
let port = 0;
let idleTimeoutMs = 45000; // T13
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    let v = null;
    if (a === '--idle-timeout-ms') v = argv[++i];
    else if (a.startsWith('--idle-timeout-ms=')) v = a.slice(18);
    else if (/^\d+$/.test(a)) { port = Number(a); continue; }
    else { console.error(`usage: thenvoi-reference.mjs [port] [--idle-timeout-ms N] (unknown: ${a})`); process.exit(2); }
    if (!/^\d+$/.test(v ?? '') || Number(v) < 1) { console.error('--idle-timeout-ms needs a positive integer'); process.exit(2); }
    idleTimeoutMs = Number(v);
  }
}

// ---------------------------------------------------------------- helpers
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/; // T24
const newId = () => crypto.randomUUID();
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// T24: RFC 3339, UTC, microseconds. The clock is made strictly increasing, so
// creation order is also (inserted_at, id) order (T48's "oldest first").
let lastMicros = 0;
function now() {
  const us = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  lastMicros = us > lastMicros ? us : lastMicros + 1;
  const d = new Date(Math.floor(lastMicros / 1000));
  return d.toISOString().slice(0, 19) + '.' + String(lastMicros % 1000000).padStart(6, '0') + 'Z';
}

// Deterministic seed values (ids and keys of the profile).
const seedHex = (label, n = 64) => crypto.createHash('sha256').update('thenvoi-reference/' + label).digest('hex').slice(0, n);
function seedUuid(label) {
  const h = seedHex(label, 32).split('');
  h[12] = '4';
  h[16] = '89ab'[parseInt(h[16], 16) & 3];
  const s = h.join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}
const slug = (name) => name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'agent';

// REST errors (T30): {error: {code, message, details?, request_id}}.
class HttpError extends Error {
  constructor(status, code, message, details) { super(message); this.status = status; this.code = code; this.details = details; }
}
const badRequest = (msg, details) => new HttpError(400, 'bad_request', msg, details);
const forbidden = (msg) => new HttpError(403, 'forbidden', msg);
const notFound = (msg = 'Not found') => new HttpError(404, 'not_found', msg);
const unprocessable = (msg, details) => new HttpError(422, 'unprocessable_entity', msg, details);

// ---------------------------------------------------------------- state
const users = new Map();    // id -> {id, name, handle, apiKey, token, insertedAt}
const agents = new Map();   // id -> {id, name, description, handle, ownerId, apiKey, isExternal, insertedAt, updatedAt}
const byKey = new Map();    // api key -> {kind: 'User'|'Agent', id}
const byToken = new Map();  // token -> user id
const rooms = new Map();    // id -> room (deleted rooms are removed)
const memberOf = new Map(); // entity id -> Set of room ids
let roomSeq = 0;

function entityOf(id) {
  const u = users.get(id);
  if (u) return { type: 'User', e: u };
  const a = agents.get(id);
  return a ? { type: 'Agent', e: a } : null;
}

function addUser(label, name, handle) {
  const id = seedUuid('user/' + label);
  const u = { id, name, handle, apiKey: 'thnv_u_' + seedHex('ukey/' + label, 40), insertedAt: now() };
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  u.token = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: id, iss: 'thenvoi-reference' })}.${seedHex('sig/' + label, 43)}`;
  users.set(id, u);
  byKey.set(u.apiKey, { kind: 'User', id });
  byToken.set(u.token, id);
  return u;
}

function addAgent(owner, name, description, apiKey, id = newId()) {
  let h = `${owner.handle}/${slug(name)}`;
  const taken = new Set([...agents.values()].map((a) => a.handle));
  for (let n = 2; taken.has(h); n++) h = `${owner.handle}/${slug(name)}-${n}`;
  const t = now();
  const a = { id, name, description, handle: h, ownerId: owner.id, apiKey, isExternal: true, insertedAt: t, updatedAt: t };
  agents.set(id, a);
  byKey.set(apiKey, { kind: 'Agent', id });
  return a;
}

// The profile: users[0] owns three agents, users[1] one.
const owner0 = addUser('0', 'Task Owner', 'task.owner');
const owner1 = addUser('1', 'Second User', 'second.user');
const seedAgents = [
  [owner0, 'Weather Agent', 'Answers weather questions'],
  [owner0, 'Booking Agent', 'Books trains and hotels'],
  [owner0, 'Research Agent', 'Looks things up'],
  [owner1, 'Helper Agent', 'Helps the second user'],
].map(([o, n, d], i) => addAgent(o, n, d, 'thnv_a_' + seedHex('akey/' + i, 40), seedUuid('agent/' + i)));

// ---------------------------------------------------------------- serializers
const roomJson = (r) => ({ id: r.id, title: r.title, task_id: r.taskId, inserted_at: r.insertedAt, updated_at: r.updatedAt });

function participantJson(p) { // T36
  const { type, e } = entityOf(p.id);
  return { id: p.id, name: e.name, type, role: p.role, status: p.status, handle: e.handle };
}

function participantAddedJson(p) { // T27: no email; role and status are known, so sent
  const { type, e } = entityOf(p.id);
  const out = { id: p.id, type, name: e.name, handle: e.handle ?? null };
  if (type === 'Agent') { out.description = e.description ?? null; out.is_external = e.isExternal; }
  out.role = p.role;
  out.status = p.status;
  return out;
}

function peerJson(id) { // T38
  const { type, e } = entityOf(id);
  const out = { id, name: e.name, type, handle: e.handle };
  if (type === 'Agent') { out.description = e.description ?? null; out.is_external = e.isExternal; }
  out.is_contact = false;
  out.source = 'registry';
  return out;
}

function pushMessageJson(m) { // T25: no chat_room_id; sender_name omitted, never null, when unknown
  const out = { id: m.id, content: m.content, sender_id: m.senderId, sender_type: m.senderType };
  if (typeof m.senderName === 'string') out.sender_name = m.senderName;
  out.message_type = 'text';
  out.metadata = { mentions: m.mentions.map((x) => ({ ...x })) };
  out.inserted_at = m.insertedAt;
  out.updated_at = m.updatedAt;
  return out;
}

function restMessageJson(m, agentId) { // T46: the caller's delivery record in metadata
  let metadata;
  if (m.messageType === 'text') {
    metadata = { mentions: m.mentions.map((x) => ({ ...x })) };
    const rec = agentId ? m.deliveries.get(agentId) : undefined;
    if (rec) {
      if (rec.status) metadata.status = rec.status;
      metadata.attempts = rec.attempts.map((a) => ({ ...a }));
      metadata.processed_at = rec.processedAt;
    }
  } else {
    metadata = m.metadata ? structuredClone(m.metadata) : {};
  }
  return {
    id: m.id, content: m.content, message_type: m.messageType, sender_id: m.senderId, sender_type: m.senderType,
    sender_name: m.senderName ?? null, chat_room_id: m.roomId, metadata, inserted_at: m.insertedAt, updated_at: m.updatedAt,
  };
}

// ---------------------------------------------------------------- sockets
// A connection: {ws, kind, id, joins: Map(topic -> {joinRef}), noVsn, alive, timer}.
// subs is the delivery index: topic -> Set of connections that receive its
// pushes. A joined topic may be absent from it (a removed participant, T21).
const subs = new Map();
const agentConn = new Map(); // agent id -> its one live connection (T14)
const FAMILIES = new Set(['chat_room', 'room_participants', 'agent_rooms', 'user_rooms', 'agent_contacts', 'user_contacts', 'tasks']);

function send(c, text) {
  if (!c.alive || c.ws.readyState !== 1) return false;
  c.ws.send(text);
  return true;
}
const frame = (joinRef, ref, topic, event, payload) => JSON.stringify([joinRef, ref, topic, event, payload]);
const replyFrame = (c, joinRef, ref, topic, status, response) => send(c, frame(joinRef, ref, topic, 'phx_reply', { status, response }));

function subscribe(c, topic) {
  let s = subs.get(topic);
  if (!s) subs.set(topic, (s = new Set()));
  s.add(c);
}
function unsubscribe(c, topic) {
  const s = subs.get(topic);
  if (s) { s.delete(c); if (s.size === 0) subs.delete(topic); }
}

// T6: server pushes carry null refs. The frame is encoded once per broadcast.
function broadcast(topic, event, payload) {
  const s = subs.get(topic);
  if (!s || s.size === 0) return;
  const text = frame(null, null, topic, event, payload);
  for (const c of s) send(c, text);
}

function dropConn(c) {
  if (!c.alive) return;
  c.alive = false;
  clearTimeout(c.timer);
  for (const topic of c.joins.keys()) unsubscribe(c, topic);
  if (c.kind === 'Agent' && agentConn.get(c.id) === c) agentConn.delete(c.id);
}

// T3, T4: who a connection is; null means refused with 403.
function authSocket(q) {
  const token = q.get('token');
  const key = q.get('api_key');
  let agentId = q.get('agent_id');
  if (token !== null && key !== null) return null;
  if (agentId !== null) {
    agentId = agentId.toLowerCase();
    if (!UUID_RE.test(agentId)) return null;
  }
  if (token !== null) {
    if (agentId !== null) return null; // not one of T3's four ways
    const uid = byToken.get(token);
    return uid ? { kind: 'User', id: uid } : null;
  }
  if (key === null) return null;
  const p = byKey.get(key);
  if (!p) return null;
  if (p.kind === 'User') {
    if (agentId === null) return p;
    const a = agents.get(agentId);
    return a && a.ownerId === p.id ? { kind: 'Agent', id: a.id } : null;
  }
  return agentId === null || agentId === p.id ? p : null;
}

// T8, T15, T16: may this connection join this topic?
function mayJoin(c, family, id) {
  if (!UUID_RE.test(id)) return false;
  switch (family) {
    case 'chat_room':
    case 'room_participants': {
      const r = rooms.get(id);
      return !!r && r.participants.has(c.id);
    }
    case 'agent_rooms':
    case 'agent_contacts':
      return c.kind === 'Agent' && c.id === id;
    default: // user_rooms, user_contacts, tasks
      return c.kind === 'User' && c.id === id;
  }
}

// T5, T7: a readable frame or null.
function readFrame(data, isBinary) {
  if (isBinary) return null;
  let f;
  try { f = JSON.parse(data.toString('utf8')); } catch { return null; }
  if (!Array.isArray(f) || f.length !== 5) return null;
  const [joinRef, ref, topic, event, payload] = f;
  const refOk = (v) => v === null || typeof v === 'string';
  if (!refOk(joinRef) || !refOk(ref)) return null;
  if (typeof topic !== 'string' || topic === '' || typeof event !== 'string' || event === '') return null;
  if (!isObj(payload)) return null;
  return f;
}

function closeJoin(c, topic) { // T9, T10: [join_ref, join_ref, topic, "phx_close", {}]
  const j = c.joins.get(topic);
  c.joins.delete(topic);
  unsubscribe(c, topic);
  send(c, frame(j.joinRef, j.joinRef, topic, 'phx_close', {}));
}

function handleFrame(c, [joinRef, ref, topic, event]) {
  if (topic === 'phoenix' && event === 'heartbeat') return replyFrame(c, joinRef, ref, topic, 'ok', {}); // T12
  if (event === 'phx_join') {
    const i = topic.indexOf(':');
    const family = i > 0 ? topic.slice(0, i) : null;
    if (!family || !FAMILIES.has(family)) return replyFrame(c, null, ref, topic, 'error', { reason: 'unmatched topic' }); // T8
    if (c.joins.has(topic)) closeJoin(c, topic); // T9
    if (!mayJoin(c, family, topic.slice(i + 1))) return replyFrame(c, joinRef, ref, topic, 'error', { reason: 'unauthorized' }); // T16
    c.joins.set(topic, { joinRef });
    subscribe(c, topic);
    return replyFrame(c, joinRef, ref, topic, 'ok', {}); // T8
  }
  if (event === 'phx_leave') { // T10
    replyFrame(c, joinRef, ref, topic, 'ok', {});
    if (c.joins.has(topic)) closeJoin(c, topic);
    return;
  }
  if (c.joins.has(topic)) return replyFrame(c, joinRef, ref, topic, 'error', { reason: 'unsupported event' }); // T11
  return replyFrame(c, null, ref, topic, 'error', { reason: 'unmatched topic' }); // T11
}

function onConnection(ws, principal, noVsn) {
  const c = { ws, kind: principal.kind, id: principal.id, joins: new Map(), noVsn, alive: true, timer: null };
  if (c.kind === 'Agent') { // T14: the newest socket wins; the older one is closed 1000, no frame first
    const old = agentConn.get(c.id);
    if (old) { dropConn(old); old.ws.close(1000); }
    agentConn.set(c.id, c);
  }
  c.timer = setTimeout(() => { dropConn(c); ws.close(1000); }, idleTimeoutMs); // T13
  ws.on('message', (data, isBinary) => {
    if (!c.alive) return;
    c.timer.refresh(); // T13: any frame counts
    if (c.noVsn) { dropConn(c); ws.close(1011); return; } // T2
    const f = readFrame(data, isBinary);
    if (!f) { dropConn(c); ws.close(1011); return; } // T7
    handleFrame(c, f);
  });
  ws.on('close', () => dropConn(c));
  ws.on('error', () => dropConn(c));
}

// ---------------------------------------------------------------- rooms and pushes
function createRoom(creator, taskId) { // T37, T51: the creator is the owner; T22: room_added
  const t = now();
  const id = newId();
  const r = {
    id, seq: ++roomSeq, title: `Room ${id.slice(0, 8)}`, taskId: taskId ?? null, insertedAt: t, updatedAt: t,
    participants: new Map(), messages: [], byId: new Map(), addressed: new Map(),
  };
  rooms.set(id, r);
  addMember(r, creator.id, 'owner');
  pushRoomAdded(r, creator.id);
  return r;
}

function addMember(r, id, role) {
  const p = { id, role, status: 'active' };
  r.participants.set(id, p);
  if (!memberOf.has(id)) memberOf.set(id, new Set());
  memberOf.get(id).add(r.id);
  return p;
}

const ownTopic = (id) => (agents.has(id) ? 'agent_rooms:' : 'user_rooms:') + id;
function pushRoomAdded(r, id) { broadcast(ownTopic(id), 'room_added', roomJson(r)); } // T21, T28

function addParticipant(r, id, role) { // T22: participant_added, then room_added
  const p = addMember(r, id, role);
  broadcast('room_participants:' + r.id, 'participant_added', participantAddedJson(p));
  pushRoomAdded(r, id);
  return p;
}

function purgeSubscriptions(r, id) { // T21: no more events from the room, no phx_close
  for (const topic of ['chat_room:' + r.id, 'room_participants:' + r.id]) {
    const s = subs.get(topic);
    if (!s) continue;
    for (const c of [...s]) if (c.id === id) unsubscribe(c, topic);
  }
}

function removeParticipant(r, id) { // T22: participant_removed (P included), then room_removed
  const p = r.participants.get(id);
  const json = participantJson(p);
  broadcast('room_participants:' + r.id, 'participant_removed', { id, type: json.type });
  r.participants.delete(id);
  memberOf.get(id)?.delete(r.id);
  purgeSubscriptions(r, id);
  broadcast(ownTopic(id), 'room_removed', { ...roomJson(r), status: 'active', type: 'direct', removed_at: now() }); // T28
  return json;
}

function deleteRoom(r) { // T20: room_deleted, then nothing more on either topic; joins refused; REST 404
  broadcast('room_participants:' + r.id, 'room_deleted', { id: r.id });
  subs.delete('chat_room:' + r.id);
  subs.delete('room_participants:' + r.id);
  for (const id of r.participants.keys()) memberOf.get(id)?.delete(r.id);
  rooms.delete(r.id);
}

// T34, T51: a text message; T17–T19: its pushes; T40: its delivery records.
function postText(r, senderId, body) {
  const details = {};
  body.message.mentions.forEach((m, i) => {
    if (!r.participants.has(m.id)) details[`/message/mentions/${i}/id`] = ['is not a participant of this room'];
  });
  if (Object.keys(details).length) throw unprocessable('Every mention must name a participant of the room', details);
  const ids = [...new Set(body.message.mentions.map((m) => m.id))];
  const sender = entityOf(senderId);
  const t = now();
  const m = {
    id: newId(), roomId: r.id, content: body.message.content, messageType: 'text', senderId, senderType: sender.type,
    senderName: sender.e.name, mentions: ids.map((id) => ({ id, name: entityOf(id).e.name })), metadata: null,
    insertedAt: t, updatedAt: t, deliveries: new Map(),
  };
  for (const id of ids) {
    if (id === senderId || !agents.has(id)) continue; // T40: addressed = mentioned agents other than the sender
    let list = r.addressed.get(id);
    if (!list) r.addressed.set(id, (list = { msgs: [], hint: 0 }));
    m.deliveries.set(id, { status: null, attempts: [], processedAt: null, idx: list.msgs.length });
    list.msgs.push(m);
  }
  r.messages.push(m);
  r.byId.set(m.id, m);
  // T17, T18: users joined to the room get every text message; agents only those addressed to them.
  const s = subs.get('chat_room:' + r.id);
  if (s && s.size) {
    const text = frame(null, null, 'chat_room:' + r.id, 'message_created', pushMessageJson(m));
    for (const c of s) {
      if (c.kind === 'User') send(c, text);
      else {
        const rec = m.deliveries.get(c.id);
        if (rec && send(c, text) && !rec.status) rec.status = 'delivered'; // T41: the push sets delivered
      }
    }
  }
  const recipients = ids.map((id) => { const { e } = entityOf(id); return { id, handle: e.handle, name: e.name }; });
  return { status: 201, body: { data: { id: m.id, success: true, recipients } } };
}

// ---------------------------------------------------------------- request bodies (T32)
// A tiny schema checker mirroring schemas/thenvoi/requests/. Unknown properties
// at any level are collected apart (400); every other violation is a 422.
const obj = (props) => ({ t: 'obj', props });
const str = (min = 0) => ({ t: 'str', min });
const uuidT = { t: 'uuid' };
const nullableUuid = { t: 'uuid', nullable: true };
const oneOf = (...vals) => ({ t: 'enum', vals });
const arr = (items, min = 0) => ({ t: 'arr', items, min });
const anyObj = { t: 'anyobj' };
const ROLES = ['owner', 'admin', 'member'];
const SPEC = {
  sendMessage: obj({ message: [true, obj({ content: [true, str(1)], mentions: [true, arr(obj({ id: [true, uuidT], name: [false, str()], handle: [false, str()] }), 1)] })] }),
  createEvent: obj({ event: [true, obj({ content: [true, str(1)], message_type: [true, oneOf('tool_call', 'tool_result', 'thought', 'error', 'task')], metadata: [false, anyObj] })] }),
  createChat: obj({ chat: [false, obj({ task_id: [false, nullableUuid] })] }),
  addParticipant: obj({ participant: [true, obj({ participant_id: [true, uuidT], role: [false, oneOf(...ROLES)] })] }),
  markFailed: obj({ error: [true, str(1)] }),
  registerAgent: obj({ agent: [true, obj({ name: [true, str(1)], description: [true, str()] })] }),
  noBody: obj({}),
};
const esc = (k) => k.replace(/~/g, '~0').replace(/\//g, '~1');

function check(spec, v, ptr, out) {
  const bad = (msg) => { (out.invalid[ptr] ??= []).push(msg); };
  switch (spec.t) {
    case 'obj':
      if (!isObj(v)) return bad('must be an object');
      for (const k of Object.keys(v)) if (!Object.hasOwn(spec.props, k)) out.unknown[`${ptr}/${esc(k)}`] = ['is not a property this endpoint takes'];
      for (const [k, [required, sub]] of Object.entries(spec.props)) {
        if (Object.hasOwn(v, k)) check(sub, v[k], `${ptr}/${k}`, out);
        else if (required) (out.invalid[`${ptr}/${k}`] ??= []).push('is required');
      }
      return;
    case 'str':
      if (typeof v !== 'string') return bad('must be a string');
      if (v.length < spec.min) bad('must not be empty');
      return;
    case 'uuid':
      if (v === null && spec.nullable) return;
      if (typeof v !== 'string' || !UUID_RE.test(v)) bad('must be a lowercase uuid');
      return;
    case 'enum':
      if (!spec.vals.includes(v)) bad(`must be one of ${spec.vals.join(', ')}`);
      return;
    case 'arr':
      if (!Array.isArray(v)) return bad('must be an array');
      if (v.length < spec.min) bad(`must have at least ${spec.min} item`);
      v.forEach((item, i) => check(spec.items, item, `${ptr}/${i}`, out));
      return;
    case 'anyobj':
      if (!isObj(v)) bad('must be an object');
  }
}

// Parse and check a body: 400 now (not a JSON object, unknown property); the
// 422 is returned so the caller can raise it after the room check (404).
function readBody(ctx, spec) {
  let v = {};
  if (ctx.raw.trim() !== '') { // T32: an empty body reads as {}
    try { v = JSON.parse(ctx.raw); } catch { throw badRequest('The body is not valid JSON'); }
  }
  if (!isObj(v)) throw badRequest('The body must be a JSON object');
  const out = { unknown: {}, invalid: {} };
  check(spec, v, '', out);
  if (Object.keys(out.unknown).length) throw badRequest('The body has a property this endpoint does not take', out.unknown);
  const invalid = Object.keys(out.invalid).length ? unprocessable('The body is not valid', out.invalid) : null;
  return { body: v, invalid };
}
const raise = (e) => { if (e) throw e; };

// ---------------------------------------------------------------- pagination (T49)
function intParam(q, name, def) {
  const v = q.get(name);
  if (v === null) return def;
  if (!/^[0-9]+$/.test(v) || Number(v) < 1) throw unprocessable(`${name} must be an integer of at least 1`); // no details: T30's are body pointers
  return Number(v);
}
function page(q, list, defSize, extra = {}) {
  const p = intParam(q, 'page', 1);
  const size = Math.min(intParam(q, 'page_size', defSize), 100);
  const start = (p - 1) * size;
  const data = start < list.length ? list.slice(start, start + size) : [];
  const metadata = { page: p, page_size: size, total_count: list.length, total_pages: Math.max(1, Math.ceil(list.length / size)), ...extra };
  return { data, metadata };
}

// ---------------------------------------------------------------- REST handlers
const ok = (body, status = 200) => ({ status, body });

function roomOf(ctx, param = 'chat_id') { // T31, T33: only a participant sees the room
  const r = rooms.get(ctx.params[param]);
  if (!r || !r.participants.has(ctx.who.id)) throw notFound('Chat not found');
  return r;
}
const roomsOf = (id) => [...(memberOf.get(id) ?? [])].map((rid) => rooms.get(rid)).filter(Boolean).sort((a, b) => a.seq - b.seq);

function isPeer(agent, id) { // T38: same owner's agents and the owner, never itself (no global agents here)
  if (id === agent.id) return false;
  if (id === agent.ownerId) return true;
  const a = agents.get(id);
  return !!a && a.ownerId === agent.ownerId;
}

function addParticipantRoute(ctx, viaAgent) { // T36, T51
  const { body, invalid } = readBody(ctx, SPEC.addParticipant);
  const r = roomOf(ctx);
  raise(invalid);
  if (viaAgent && !['owner', 'admin'].includes(r.participants.get(ctx.who.id).role)) throw forbidden('Only an owner or admin of the room may add participants');
  const pid = body.participant.participant_id;
  if (!entityOf(pid)) throw notFound('Participant not found');
  if (r.participants.has(pid)) throw unprocessable('Already a participant of the room', { '/participant/participant_id': ['is already a participant'] });
  if (viaAgent && !isPeer(agents.get(ctx.who.id), pid)) throw notFound('Participant not found'); // not one of its peers (T38)
  const p = addParticipant(r, pid, body.participant.role ?? 'member');
  return ok({ data: participantJson(p) }, 201);
}

function removeParticipantRoute(ctx) { // T36, T51
  const r = roomOf(ctx);
  if (!r.participants.has(ctx.params.id)) throw notFound('Participant not found');
  return ok({ data: removeParticipant(r, ctx.params.id) });
}

function createRoomRoute(ctx) { // T37, T51
  const { body, invalid } = readBody(ctx, SPEC.createChat);
  raise(invalid);
  return ok({ data: roomJson(createRoom(entityOf(ctx.who.id).e, body.chat?.task_id)) }, 201);
}

function sendMessageRoute(ctx) { // T34, T51
  const { body, invalid } = readBody(ctx, SPEC.sendMessage);
  const r = roomOf(ctx);
  raise(invalid);
  return postText(r, ctx.who.id, body);
}

const participantsRoute = (ctx) => ok({ data: [...roomOf(ctx).participants.values()].map(participantJson) });

// T40, T48: the caller's addressed messages of the room and their filters.
const FILTERS = {
  pending: (s) => !s || s === 'delivered' || s === 'failed',
  processing: (s) => s === 'processing',
  processed: (s) => s === 'processed',
  failed: (s) => s === 'failed',
  all: () => true,
};
const addressedList = (r, aid) => r.addressed.get(aid) ?? { msgs: [], hint: 0 };

function addressedMessage(ctx) { // T45: not in the room, or not addressed to the caller, is 404
  const r = roomOf(ctx);
  const m = r.byId.get(ctx.params.mid);
  const rec = m?.deliveries.get(ctx.who.id);
  if (!rec) throw notFound('Message not found');
  return { r, m, rec };
}

function lifecycle(action) { // T41–T44, T50
  return (ctx) => {
    const { body, invalid } = readBody(ctx, action === 'failed' ? SPEC.markFailed : SPEC.noBody);
    const { r, m, rec } = addressedMessage(ctx);
    raise(invalid);
    const t = now();
    if (action === 'processing') { // always allowed: a new attempt, re-opening processed/failed
      if (rec.status === 'processed') {
        rec.processedAt = null;
        const list = r.addressed.get(ctx.who.id);
        if (rec.idx < list.hint) list.hint = rec.idx;
      }
      rec.attempts.push({ attempt_number: rec.attempts.length + 1, status: 'processing', started_at: t, completed_at: null, error: null });
      rec.status = 'processing';
    } else {
      if (rec.status !== 'processing') throw unprocessable('The message has no active attempt (it is not processing)');
      const cur = rec.attempts[rec.attempts.length - 1];
      cur.completed_at = t;
      if (action === 'processed') { cur.status = 'success'; rec.status = 'processed'; rec.processedAt = t; }
      else { cur.status = 'failed'; cur.error = body.error; rec.status = 'failed'; }
    }
    return ok({ data: { id: m.id, status: rec.status, attempt_number: rec.attempts.length, success: true } });
  };
}

const ROUTES = [
  // ----- Agent API (T33)
  ['GET', '/agent/me', (ctx) => {
    const a = agents.get(ctx.who.id);
    return ok({ data: { id: a.id, name: a.name, description: a.description, handle: a.handle, owner_uuid: a.ownerId, inserted_at: a.insertedAt, updated_at: a.updatedAt } });
  }],
  ['GET', '/agent/peers', (ctx) => { // T38
    const a = agents.get(ctx.who.id);
    let exclude = null;
    const nic = ctx.query.get('not_in_chat');
    if (nic !== null) {
      if (!UUID_RE.test(nic)) throw unprocessable('not_in_chat must be a lowercase uuid');
      const r = rooms.get(nic);
      exclude = r && r.participants.has(a.id) ? r.participants : new Map();
    }
    const ids = [a.ownerId, ...[...agents.values()].filter((x) => x.ownerId === a.ownerId).map((x) => x.id)]
      .filter((id) => isPeer(a, id) && !(exclude && exclude.has(id)));
    return ok(page(ctx.query, ids.map(peerJson), 20));
  }],
  ['GET', '/agent/chats', (ctx) => ok(page(ctx.query, roomsOf(ctx.who.id).map(roomJson), 20))],
  ['POST', '/agent/chats', createRoomRoute],
  ['GET', '/agent/chats/:id', (ctx) => ok({ data: roomJson(roomOf(ctx, 'id')) })],
  ['GET', '/agent/chats/:chat_id/participants', participantsRoute],
  ['POST', '/agent/chats/:chat_id/participants', (ctx) => addParticipantRoute(ctx, true)],
  ['DELETE', '/agent/chats/:chat_id/participants/:id', removeParticipantRoute],
  ['GET', '/agent/chats/:chat_id/context', (ctx) => { // T39
    const r = roomOf(ctx);
    const aid = ctx.who.id;
    const list = r.messages.filter((m) => m.senderId === aid || (m.messageType === 'text' && m.mentions.some((x) => x.id === aid)));
    const { data, metadata } = page(ctx.query, list, 50);
    return ok({ data: data.map((m) => restMessageJson(m, aid)), metadata, meta: { ...metadata } });
  }],
  ['GET', '/agent/chats/:chat_id/messages', (ctx) => { // T48
    const r = roomOf(ctx);
    const aid = ctx.who.id;
    const status = ctx.query.get('status');
    if (status !== null && !Object.hasOwn(FILTERS, status)) throw unprocessable('status must be one of pending, processing, processed, failed, all');
    const keep = status === null ? (s) => s !== 'processed' : FILTERS[status];
    const list = addressedList(r, aid).msgs.filter((m) => keep(m.deliveries.get(aid).status));
    const { data, metadata } = page(ctx.query, list, 20, { status_filter: status });
    return ok({ data: data.map((m) => restMessageJson(m, aid)), metadata });
  }],
  ['POST', '/agent/chats/:chat_id/messages', sendMessageRoute],
  ['GET', '/agent/chats/:chat_id/messages/next', (ctx) => { // T47: oldest not processed, else 204
    const r = roomOf(ctx);
    const aid = ctx.who.id;
    const list = addressedList(r, aid);
    while (list.hint < list.msgs.length && list.msgs[list.hint].deliveries.get(aid).status === 'processed') list.hint++;
    if (list.hint >= list.msgs.length) return { status: 204 };
    return ok({ data: restMessageJson(list.msgs[list.hint], aid) });
  }],
  ['POST', '/agent/chats/:chat_id/messages/:mid/processing', lifecycle('processing')],
  ['POST', '/agent/chats/:chat_id/messages/:mid/processed', lifecycle('processed')],
  ['POST', '/agent/chats/:chat_id/messages/:mid/failed', lifecycle('failed')],
  ['POST', '/agent/chats/:chat_id/events', (ctx) => { // T35: stored, pushed to nobody, addressed to no agent
    const { body, invalid } = readBody(ctx, SPEC.createEvent);
    const r = roomOf(ctx);
    raise(invalid);
    const a = agents.get(ctx.who.id);
    const t = now();
    const ev = body.event;
    const m = {
      id: newId(), roomId: r.id, content: ev.content, messageType: ev.message_type, senderId: a.id, senderType: 'Agent',
      senderName: a.name, mentions: [], metadata: ev.metadata ?? null, insertedAt: t, updatedAt: t, deliveries: new Map(),
    };
    r.messages.push(m);
    r.byId.set(m.id, m);
    return ok({ data: { id: m.id, message_type: m.messageType, success: true } }, 201);
  }],
  // ----- Human API (T51)
  ['POST', '/me/agents/register', (ctx) => {
    const { body, invalid } = readBody(ctx, SPEC.registerAgent);
    raise(invalid);
    const a = addAgent(users.get(ctx.who.id), body.agent.name, body.agent.description, 'thnv_a_' + crypto.randomBytes(20).toString('hex'));
    const agent = { id: a.id, name: a.name, description: a.description, handle: a.handle, owner_uuid: a.ownerId, is_external: a.isExternal, inserted_at: a.insertedAt, updated_at: a.updatedAt };
    return ok({ data: { agent, credentials: { api_key: a.apiKey } } }, 201);
  }],
  ['GET', '/me/chats', (ctx) => ok(page(ctx.query, roomsOf(ctx.who.id).map(roomJson), 20))],
  ['POST', '/me/chats', createRoomRoute],
  ['GET', '/me/chats/:id', (ctx) => ok({ data: roomJson(roomOf(ctx, 'id')) })],
  ['DELETE', '/me/chats/:id', (ctx) => { // outside the public API (T51): T20's deletion
    const r = roomOf(ctx, 'id');
    if (r.participants.get(ctx.who.id).role !== 'owner') throw forbidden('Only an owner of the room may delete it');
    deleteRoom(r);
    return ok({ data: roomJson(r) });
  }],
  ['GET', '/me/chats/:chat_id/messages', (ctx) => { // every message, every type, newest first
    const r = roomOf(ctx);
    const { data, metadata } = page(ctx.query, r.messages.slice().reverse(), 20);
    return ok({ data: data.map((m) => restMessageJson(m, null)), metadata });
  }],
  ['POST', '/me/chats/:chat_id/messages', sendMessageRoute],
  ['GET', '/me/chats/:chat_id/participants', participantsRoute],
  ['POST', '/me/chats/:chat_id/participants', (ctx) => addParticipantRoute(ctx, false)],
  ['DELETE', '/me/chats/:chat_id/participants/:id', removeParticipantRoute],
].map(([method, path, handler]) => {
  const names = [];
  const re = new RegExp('^/api/v1' + path.replace(/:(\w+)/g, (_, n) => { names.push(n); return '([^/]+)'; }) + '$');
  return { method, re, names, api: path.startsWith('/agent/') ? 'Agent' : 'User', handler };
});

// ---------------------------------------------------------------- HTTP
const bootId = crypto.randomBytes(4).toString('hex');
let requestSeq = 0;

function writeJson(res, status, body, requestId) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'x-request-id': requestId });
  res.end(text);
}
function writeError(res, e, requestId) {
  const error = { code: e.code, message: e.message };
  if (e.details) error.details = e.details;
  error.request_id = requestId;
  writeJson(res, e.status, { error }, requestId);
}

const MAX_BODY = 8 * 1024 * 1024;
function onRequest(req, res) {
  const requestId = `${bootId}${(++requestSeq).toString(36).padStart(8, '0')}`;
  const chunks = [];
  let size = 0;
  req.on('data', (ch) => { size += ch.length; if (size <= MAX_BODY) chunks.push(ch); });
  req.on('end', () => {
    try {
      if (size > MAX_BODY) throw badRequest('The body is too large');
      const out = route(req, Buffer.concat(chunks).toString('utf8'));
      if (out.status === 204) { res.writeHead(204, { 'x-request-id': requestId }); res.end(); }
      else writeJson(res, out.status, out.body, requestId);
    } catch (e) {
      if (e instanceof HttpError) writeError(res, e, requestId);
      else { console.error(e); writeError(res, new HttpError(500, 'internal_server_error', 'Internal error'), requestId); }
    }
  });
}

function route(req, raw) {
  const url = new URL(req.url, 'http://localhost');
  let match = null;
  let r = null;
  for (const cand of ROUTES) {
    if (cand.method !== req.method) continue;
    match = cand.re.exec(url.pathname);
    if (match) { r = cand; break; }
  }
  if (!r) throw notFound('No such route'); // T31
  const key = req.headers['x-api-key']; // T29: only X-API-Key is read
  if (!key) throw new HttpError(401, 'unauthorized', 'Missing API key');
  const who = byKey.get(key);
  if (!who) throw new HttpError(401, 'unauthorized', 'Invalid API key');
  if (who.kind !== r.api) throw forbidden(r.api === 'Agent' ? 'The Agent API needs an agent key' : 'The Human API needs a user key');
  const params = {};
  r.names.forEach((n, i) => { params[n] = match[i + 1]; });
  for (const v of Object.values(params)) if (!UUID_RE.test(v)) throw notFound('Not found'); // T31: malformed id in a path
  return r.handler({ who, params, query: url.searchParams, raw });
}

// ---------------------------------------------------------------- server
const wss = new WebSocketServer({ noServer: true, clientTracking: false });
const server = http.createServer(onRequest);
server.keepAliveTimeout = 65000;

function refuseUpgrade(socket, status) {
  const body = JSON.stringify({ error: { code: status === 403 ? 'forbidden' : 'not_found', message: status === 403 ? 'Connection refused' : 'No such route' } });
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  socket.destroySoon?.();
}

server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => {});
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname !== '/api/v1/socket/websocket') return refuseUpgrade(socket, 404); // T1
  const vsn = url.searchParams.get('vsn');
  if (vsn !== null && !/^2\.\d+\.\d+$/.test(vsn)) return refuseUpgrade(socket, 403); // T2
  const principal = authSocket(url.searchParams);
  if (!principal) return refuseUpgrade(socket, 403); // T4
  wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, principal, vsn === null));
});

server.listen(port, '127.0.0.1', () => {
  const url = `http://127.0.0.1:${server.address().port}`;
  const profile = {
    thenvoi: {
      users: [owner0, owner1].map((u) => ({ id: u.id, name: u.name, apiKey: u.apiKey, token: u.token })),
      agents: seedAgents.map((a) => ({ id: a.id, name: a.name, apiKey: a.apiKey, ownerId: a.ownerId })),
      idleTimeoutMs,
      deleteRoom: '/api/v1/me/chats/{id}',
    },
  };
  process.stdout.write(JSON.stringify({ url, profile }) + '\n');
});

const stop = () => { server.close(); process.exit(0); };
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
