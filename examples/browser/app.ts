// A collaborative page on Rhizome: a todo list (database nodes), a note bound to a Y.Text
// through db.doc, and presence from db.awareness. Data lives in this browser's IndexedDB and
// syncs, sealed end to end, through the relay the example server started.
import { openDatabase } from '@rhizome/sync';
import { BroadcastChannelTransport, type JsonValue } from '@rhizome/core';

interface Config {
  relayUrl: string;
  dbId: string;
}
interface Todo {
  title: string;
  done: boolean;
  createdAt: number;
  by: string;
}
interface Presence {
  user?: { name: string; color: string };
  typing?: boolean;
}

const COLORS = ['#4f46e5', '#0891b2', '#db2777', '#ea580c', '#16a34a', '#9333ea', '#0d9488', '#ca8a04'];
const NAMES = ['Ada', 'Grace', 'Linus', 'Barbara', 'Ken', 'Margaret', 'Dennis', 'Frances'];

function colorFor(name: string): string {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return COLORS[h % COLORS.length]!;
}

function $(id: string): HTMLElement {
  return document.getElementById(id)!;
}

const config = (await (await fetch('/config.json')).json()) as Config;
const dbId = location.hash.slice(1) || config.dbId;
if (location.hash.slice(1) !== dbId) history.replaceState(null, '', `#${dbId}`);
const params = new URLSearchParams(location.search);
const name = params.get('name') ?? sessionStorage.getItem('rhizome-name') ?? NAMES[Math.floor(Math.random() * NAMES.length)]!;
sessionStorage.setItem('rhizome-name', name);
const color = colorFor(name);

// One IndexedDB store per database in this browser profile; tabs of one profile share it.
// The relay for other devices, and a BroadcastChannel for the other tabs of this browser (they
// stay in step even when the relay is down).
const db = await openDatabase({
  id: dbId,
  path: `example-${dbId}`,
  transport: [{ mode: 'relay', relayUrl: config.relayUrl }, new BroadcastChannelTransport()],
});
(globalThis as unknown as { rhizomeExample: unknown }).rhizomeExample = { db };

$('whoami').textContent = `You are ${name} · changes sync live and survive reloads`;
$('dbid').textContent = `db ${dbId.slice(0, 10)}…`;

// ---- todos: one node per task ------------------------------------------------------------

function todos(): Array<{ id: string; todo: Todo }> {
  return db
    .list()
    .filter((n) => n.id.startsWith('todo:'))
    .map((n) => ({ id: n.id, todo: n.data as unknown as Todo }))
    .sort((a, b) => a.todo.createdAt - b.todo.createdAt || a.id.localeCompare(b.id));
}

function renderTodos(): void {
  const list = $('todos');
  const items = todos();
  list.replaceChildren(
    ...items.map(({ id, todo }) => {
      const li = document.createElement('li');
      li.dataset['id'] = id;
      if (todo.done) li.classList.add('done');
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.checked = todo.done;
      box.setAttribute('aria-label', `done: ${todo.title}`);
      box.addEventListener('change', () => {
        db.put(id, { done: box.checked });
        saved();
      });
      const title = document.createElement('span');
      title.className = 'title';
      title.textContent = todo.title;
      const by = document.createElement('span');
      by.className = 'by';
      by.textContent = todo.by;
      by.style.background = colorFor(todo.by);
      const del = document.createElement('button');
      del.className = 'del';
      del.title = 'Delete';
      del.textContent = '×';
      del.addEventListener('click', () => {
        db.delete(id);
        saved();
      });
      li.append(box, title, by, del);
      return li;
    }),
  );
  if (items.length === 0) {
    const empty = document.createElement('li');
    empty.className = 'empty';
    empty.textContent = 'Nothing to do yet.';
    list.append(empty);
  }
  const open = items.filter((t) => !t.todo.done).length;
  $('count').textContent = `${open} open · ${items.length - open} done`;
}

$('add').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $('new-todo') as HTMLInputElement;
  const title = input.value.trim();
  if (!title) return;
  const id = `todo:${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const todo: Record<string, JsonValue> = { title, done: false, createdAt: Date.now(), by: name };
  db.put(id, todo);
  input.value = '';
  saved();
});

// ---- the note: a Y.Text in db.doc, bound to a textarea --------------------------------------

const text = db.doc.getText('note');
const area = $('note') as HTMLTextAreaElement;
const LOCAL = Symbol('textarea');
area.value = text.toString();

area.addEventListener('input', () => {
  const before = text.toString();
  const after = area.value;
  let start = 0;
  while (start < before.length && start < after.length && before[start] === after[start]) start++;
  let endBefore = before.length;
  let endAfter = after.length;
  while (endBefore > start && endAfter > start && before[endBefore - 1] === after[endAfter - 1]) {
    endBefore--;
    endAfter--;
  }
  db.doc.transact(() => {
    if (endBefore > start) text.delete(start, endBefore - start);
    if (endAfter > start) text.insert(start, after.slice(start, endAfter));
  }, LOCAL);
  noteInfo();
  saved();
});

text.observe((event, tr) => {
  if (tr.origin === LOCAL) return;
  // Keep the caret where it was relative to the text around it.
  let caret = area.selectionStart;
  let index = 0;
  for (const op of event.delta) {
    if (op.retain !== undefined) index += op.retain;
    else if (op.insert !== undefined) {
      const n = typeof op.insert === 'string' ? op.insert.length : 1;
      if (index < caret) caret += n;
      index += n;
    } else if (op.delete !== undefined) {
      if (index < caret) caret -= Math.min(op.delete, caret - index);
    }
  }
  area.value = text.toString();
  if (document.activeElement === area) area.setSelectionRange(caret, caret);
  noteInfo();
});

function noteInfo(): void {
  const words = text.toString().trim().split(/\s+/).filter(Boolean).length;
  $('note-info').textContent = `${words} words`;
}

// ---- presence ------------------------------------------------------------------------------

db.awareness.setLocalStateField('user', { name, color });
area.addEventListener('focus', () => db.awareness.setLocalStateField('typing', true));
area.addEventListener('blur', () => db.awareness.setLocalStateField('typing', false));

function renderPresence(): void {
  const people = [...db.awareness.getStates().entries()]
    .map(([clientId, state]) => ({ clientId, ...(state as Presence) }))
    .filter((p) => p.user)
    .sort((a, b) => (a.clientId === db.awareness.clientID ? -1 : b.clientId === db.awareness.clientID ? 1 : a.user!.name.localeCompare(b.user!.name)));
  $('presence').replaceChildren(
    ...people.map((p) => {
      const el = document.createElement('div');
      el.className = `avatar${p.typing ? ' typing' : ''}`;
      el.style.background = p.user!.color;
      el.textContent = p.user!.name.slice(0, 1).toUpperCase();
      el.title = `${p.user!.name}${p.clientId === db.awareness.clientID ? ' (you)' : ''}${p.typing ? ' — typing' : ''}`;
      el.dataset['name'] = p.user!.name;
      return el;
    }),
  );
}
db.awareness.on('change', renderPresence);

// ---- status --------------------------------------------------------------------------------

function renderStatus(): void {
  const peers = db.peers().length;
  const pill = $('status');
  pill.textContent = peers > 0 ? `● live · ${peers} ${peers === 1 ? 'peer' : 'peers'}` : '○ offline · saving locally';
  pill.classList.toggle('off', peers === 0);
}

let saving: Promise<void> | null = null;
function saved(): void {
  $('saved').textContent = 'saving…';
  const current = (saving = db.flush().then(
    () => {
      if (saving === current) $('saved').textContent = `✓ saved in this browser (IndexedDB) · ${db.size} nodes`;
    },
    (error: unknown) => {
      $('saved').textContent = `not saved: ${(error as Error).message}`;
    },
  ));
}

void (async () => {
  for await (const event of db.events.subscribe()) {
    if (event.type === 'node-upsert' || event.type === 'node-delete') {
      renderTodos();
      if (event.origin === 'remote') saved();
    } else if (event.type === 'peer-connected' || event.type === 'peer-disconnected' || event.type === 'synced') {
      renderStatus();
    }
  }
})();

renderTodos();
renderPresence();
renderStatus();
noteInfo();
saved();
