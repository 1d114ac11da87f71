// A minimal Nostr browser client for relaycore-relay: sign a note with nostr-tools, publish it,
// subscribe, and show the note when the relay delivers it. Query parameters:
//   relay=ws://127.0.0.1:7777   the relay to use (default: ws://<this page's host>:7777)
//   text=...                    the note's content (default: a greeting with the time)
(() => {
  'use strict';
  const { generateSecretKey, getPublicKey, finalizeEvent, verifyEvent } = window.NostrTools;
  const params = new URLSearchParams(window.location.search);
  const relayUrl = params.get('relay') || `ws://${window.location.hostname || '127.0.0.1'}:7777`;
  const text = params.get('text') || `hello from the browser at ${new Date().toISOString()}`;

  const $ = (id) => document.getElementById(id);
  const setStatus = (s, isError) => {
    $('status').textContent = s;
    $('status').className = isError ? 'error' : '';
    document.body.dataset.state = s;
  };
  const log = (line) => {
    $('log').textContent += `${line}\n`;
  };

  $('relay-url').textContent = relayUrl;

  // NIP-11 over plain HTTP on the same port (cross-origin: needs the relay's CORS headers).
  const httpUrl = relayUrl.replace(/^ws(s?):/, 'http$1:');
  fetch(httpUrl, { headers: { Accept: 'application/nostr+json' } })
    .then((r) => r.json())
    .then((info) => {
      $('relay-name').textContent = `${info.name} (NIPs ${info.supported_nips.join(', ')})`;
      log(`NIP-11: ${JSON.stringify(info).slice(0, 120)}...`);
    })
    .catch((err) => {
      $('relay-name').textContent = `unavailable: ${err}`;
    });

  const sk = generateSecretKey();
  const pk = getPublicKey(sk);
  $('pubkey').textContent = pk;
  const note = finalizeEvent(
    { kind: 1, created_at: Math.floor(Date.now() / 1000), tags: [['client', 'relaycore-web']],
      content: text },
    sk,
  );

  const showNote = (ev) => {
    const div = document.createElement('div');
    div.className = 'note';
    div.dataset.id = ev.id;
    const content = document.createElement('div');
    content.className = 'content';
    content.textContent = ev.content;
    const meta = document.createElement('div');
    meta.className = 'meta';
    meta.textContent = `id ${ev.id} · kind ${ev.kind} · ${new Date(ev.created_at * 1000).toISOString()}`;
    div.append(content, meta);
    $('received').append(div);
  };

  setStatus('connecting');
  const ws = new WebSocket(relayUrl);
  ws.onopen = () => {
    setStatus('subscribing');
    ws.send(JSON.stringify(['REQ', 'mine', { authors: [pk] }]));
  };
  ws.onerror = () => setStatus('connection error', true);
  ws.onclose = (e) => log(`closed ${e.code} ${e.reason}`);
  ws.onmessage = (msg) => {
    let m;
    try {
      m = JSON.parse(msg.data);
    } catch (err) {
      log(`unparseable: ${msg.data}`);
      return;
    }
    log(`< ${msg.data.length > 160 ? `${msg.data.slice(0, 160)}...` : msg.data}`);
    switch (m[0]) {
      case 'EOSE':
        setStatus('publishing');
        ws.send(JSON.stringify(['EVENT', note]));
        break;
      case 'OK':
        if (m[1] === note.id) {
          if (m[2]) setStatus(document.body.dataset.state === 'received' ? 'received' : 'published');
          else setStatus(`refused: ${m[3]}`, true);
        }
        break;
      case 'EVENT': {
        const ev = m[2];
        if (!verifyEvent(ev)) {
          log(`bad signature on ${ev.id}`);
          return;
        }
        showNote(ev);
        if (ev.id === note.id) setStatus('received');
        break;
      }
      case 'NOTICE':
      case 'CLOSED':
        log(`${m[0]}: ${m[m.length - 1]}`);
        break;
      default:
        break;
    }
  };
})();
