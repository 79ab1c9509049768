import { X509Certificate } from 'node:crypto';
import { Gauge, type Registry } from 'prom-client';
import type { TlsFiles } from '@hollowtrees/grpcplugin';
import type { ConfigFiles } from './config/config-files.js';

/**
 * When each certificate core presents expires: the receiver's (`server.tls`) and each plugin's
 * client certificate (`plugins.<name>.tls`), read at scrape time from what the files hold now,
 * so an alert can say that a renewal (cert-manager's, certbot's) did not happen.
 */
export class TlsMetrics {
  private tracked: ReadonlyMap<string, TlsFiles> = new Map();

  constructor(registry: Registry) {
    const tracked = (): ReadonlyMap<string, TlsFiles> => this.tracked;
    new Gauge({
      name: 'hollowtrees_tls_certificate_expiry_timestamp_seconds',
      help: 'When the certificate core presents expires (Unix time), by where the configuration names it: server.tls, or plugins.<name>.tls for a client certificate.',
      labelNames: ['certificate'],
      registers: [registry],
      collect() {
        // A reload may have dropped a plugin: its series goes with it.
        this.reset();
        for (const [certificate, files] of tracked()) {
          const pem = files.current.cert;
          if (pem) this.set({ certificate }, Date.parse(new X509Certificate(pem).validTo) / 1000);
        }
      },
    });
  }

  /** Reports the certificates of a configuration's files from now on (at start, and at each reload). */
  track(files: Pick<ConfigFiles, 'receiverTls' | 'pluginTls'>): void {
    const tracked = new Map<string, TlsFiles>();
    if (files.receiverTls) tracked.set('server.tls', files.receiverTls);
    for (const [name, tls] of files.pluginTls) if ('files' in tls && tls.files.paths.cert !== undefined) tracked.set(`plugins.${name}.tls`, tls.files);
    this.tracked = tracked;
  }
}
