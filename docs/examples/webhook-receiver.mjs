// A webhook receiver for trying webhooks on your machine: answers 200 to every request, and appends
// each delivery as one JSON line ({"signature", "event_id", "body": the raw body}) to a file.
// Usage: node webhook-receiver.mjs <file> [port]   (port 0, the default: any free one)
// Once listening, it writes its port to <file>.port.
import { appendFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';

const [file, port = '0'] = process.argv.slice(2);
if (!file) throw new Error('usage: node webhook-receiver.mjs <file> [port]');

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const delivery = {
      signature: req.headers['subscriptions-signature'],
      event_id: req.headers['subscriptions-event-id'],
      body: Buffer.concat(chunks).toString('utf8'),
    };
    appendFileSync(file, JSON.stringify(delivery) + '\n');
    res.end('ok');
  });
});
server.listen(Number(port), '127.0.0.1', () => writeFileSync(`${file}.port`, String(server.address().port)));
