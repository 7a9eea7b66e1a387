// A loopback reverse proxy for the MCP conformance run only: the conformance CLI cannot send
// an Authorization header, and `op-session mcp --http` refuses requests without one. This
// adds `Authorization: Bearer <token>` (read from the 0600 token file, never from argv) and
// streams requests and responses (SSE included) through unchanged.
//
// usage: node mcp-bearer-proxy.js LISTEN_PORT TARGET_PORT TOKEN_FILE
'use strict';
const http = require('http');
const fs = require('fs');

const [listenPort, targetPort, tokenFile] = process.argv.slice(2);
const token = fs.readFileSync(tokenFile, 'utf8').trim();

http
  .createServer((req, res) => {
    const headers = { ...req.headers, host: `127.0.0.1:${targetPort}` };
    headers.authorization = `Bearer ${token}`;
    const up = http.request(
      { host: '127.0.0.1', port: Number(targetPort), method: req.method, path: req.url, headers },
      (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  })
  .listen(Number(listenPort), '127.0.0.1', () => {
    process.stdout.write('ready\n');
  });
