// A hand-rolled WebSocket client on a raw net.Socket, for what real client libraries will not
// do: unmasked frames, and a peer that stops reading.
import crypto from 'node:crypto';
import net from 'node:net';

// One frame: FIN set, the given opcode, masked (as clients must) unless masked is false.
export function encodeFrame(opcode, payload, { masked = true, fin = true } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const len = data.length;
  let header;
  if (len < 126) {
    header = Buffer.alloc(2);
    header[1] = len;
  } else if (len < 65536) {
    header = Buffer.alloc(4);
    header[1] = 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  header[0] = (fin ? 0x80 : 0) | opcode;
  if (!masked) return Buffer.concat([header, data]);
  header[1] |= 0x80;
  const mask = crypto.randomBytes(4);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; ++i) body[i] = data[i] ^ mask[i & 3];
  return Buffer.concat([header, mask, body]);
}

// Splits a buffer of server frames (never masked). Returns { frames, rest }.
export function decodeFrames(buf) {
  const frames = [];
  let off = 0;
  for (;;) {
    if (buf.length - off < 2) break;
    const b0 = buf[off];
    const b1 = buf[off + 1];
    let len = b1 & 0x7f;
    let hdr = 2;
    if (len === 126) {
      if (buf.length - off < 4) break;
      len = buf.readUInt16BE(off + 2);
      hdr = 4;
    } else if (len === 127) {
      if (buf.length - off < 10) break;
      len = Number(buf.readBigUInt64BE(off + 2));
      hdr = 10;
    }
    if (b1 & 0x80) hdr += 4;  // a server must not mask, but skip a mask if one is there
    if (buf.length - off < hdr + len) break;
    const payload = buf.subarray(off + hdr, off + hdr + len);
    frames.push({ fin: !!(b0 & 0x80), opcode: b0 & 0x0f, masked: !!(b1 & 0x80), payload });
    off += hdr + len;
  }
  return { frames, rest: buf.subarray(off) };
}

// Connects and completes the opening handshake. Resolves { socket, leftover } where leftover is
// whatever arrived after the 101 response head.
export function rawConnect(port, { host = '127.0.0.1', timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const key = crypto.randomBytes(16).toString('base64');
    const socket = net.connect(port, host);
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('handshake timed out'));
    }, timeoutMs);
    const onData = (chunk) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      const text = head.subarray(0, end).toString('latin1');
      if (!/^HTTP\/1\.1 101 /.test(text)) {
        socket.destroy();
        reject(new Error(`handshake refused: ${text}`));
        return;
      }
      const accept = crypto.createHash('sha1')
        .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      if (!text.toLowerCase().includes(`sec-websocket-accept: ${accept.toLowerCase()}`)) {
        socket.destroy();
        reject(new Error(`bad Sec-WebSocket-Accept in ${text}`));
        return;
      }
      resolve({ socket, leftover: head.subarray(end + 4) });
    };
    const onError = (err) => {
      clearTimeout(timer);
      reject(err);
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.once('connect', () => {
      socket.write(
        `GET / HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  });
}

// Reads frames until the server's close frame (or the socket ends). Resolves
// { code, reason, frames } where code is undefined if no close frame came.
export function readUntilClose(socket, leftover = Buffer.alloc(0), { timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    let buf = leftover;
    const frames = [];
    let settled = false;
    const finish = (result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      resolve({ ...result, frames });
    };
    const timer = setTimeout(() => {
      settled = true;
      socket.destroy();
      reject(new Error(`no close within ${timeoutMs} ms; frames: ${frames.length}`));
    }, timeoutMs);
    const scan = () => {
      const { frames: got, rest } = decodeFrames(buf);
      buf = rest;
      for (const f of got) {
        frames.push(f);
        if (f.opcode === 0x8) {
          const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined;
          finish({ code, reason: f.payload.subarray(2).toString() });
          return;
        }
      }
    };
    const onData = (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      scan();
    };
    socket.on('data', onData);
    socket.on('error', () => finish({ code: undefined, error: true }));
    socket.on('close', () => finish({ code: undefined }));
    scan();
  });
}
