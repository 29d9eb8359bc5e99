// An HTTP server on node.js's own event loop (libuv), for test/servers/node.sh:
// GET /big answers 4 MiB of a known pattern, POST answers how many bytes it
// got and their sum mod 2^32, anything else a short line.
'use strict';
const http = require('http');
const big = Buffer.alloc(4 * 1024 * 1024);
for (let i = 0; i < big.length; i++) big[i] = (i * 7 + 3) & 255;
const srv = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/big') {
    res.writeHead(200, { 'content-length': big.length });
    res.end(big);
    return;
  }
  let n = 0, sum = 0;
  req.on('data', d => { n += d.length; for (const b of d) sum = (sum + b) >>> 0; });
  // with its length, so an HTTP/1.0 keep-alive client (ab -k) keeps the connection
  req.on('end', () => {
    const body = `got ${n} ${sum}\n`;
    res.writeHead(200, { 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
srv.on('clientError', (e, s) => { console.log('clientError', e.code); s.destroy(); });
srv.listen(Number(process.argv[3]), process.argv[2], () => console.log('listening'));
