// Kubernetes exec probe for a plugin that listens on 127.0.0.1 only (kubelet's own probes reach
// the pod IP, which the plugin does not serve): exits 0 once a TCP connection to HOST:PORT opens,
// 1 when it is refused or takes over 3 s. Usage: node tcp-probe.mjs 127.0.0.1:9000
import { connect } from 'node:net';

const target = process.argv[2] ?? '';
const at = target.lastIndexOf(':');
const port = Number(target.slice(at + 1));
if (at <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write(`tcp-probe: expected HOST:PORT, got "${target}"\n`);
  process.exit(2);
}
const host = target.slice(0, at);
const socket = connect({ host, port, timeout: 3000 });
socket.once('connect', () => {
  socket.destroy();
  process.exit(0);
});
socket.once('timeout', () => {
  process.stderr.write(`tcp-probe: ${target}: no connection within 3 s\n`);
  process.exit(1);
});
socket.once('error', (err) => {
  process.stderr.write(`tcp-probe: ${target}: ${err.message}\n`);
  process.exit(1);
});
