import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A certificate and its key, as files and contents. */
export interface Issued {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: Buffer;
  readonly key: Buffer;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/**
 * A scratch PKI made with the openssl command line: CAs, and leaves they sign with the SANs
 * asked for (`URI:spiffe://…`, `DNS:…`, `IP:…`). Everything lives in one temp dir, removed on dispose.
 */
export class TestPki implements Disposable {
  readonly dir = mkdtempSync(join(tmpdir(), 'identity-pki-'));
  private serial = 1;

  ca(name: string): Issued {
    const certFile = join(this.dir, `${name}.crt`);
    const keyFile = join(this.dir, `${name}.key`);
    this.openssl(['req', '-x509', ...EC, '-keyout', keyFile, '-out', certFile, '-subj', `/CN=${name}`, '-days', '2']);
    return this.read(certFile, keyFile);
  }

  leaf(name: string, ca: Issued, subjectAltName: string, dir = this.dir): Issued {
    const certFile = join(dir, `${name}.crt`);
    const keyFile = join(dir, `${name}.key`);
    const csr = join(this.dir, `${name}.csr`);
    const ext = join(this.dir, `${name}.ext`);
    writeFileSync(ext, `subjectAltName=${subjectAltName}\nbasicConstraints=CA:FALSE\n`);
    this.openssl(['req', '-new', ...EC, '-keyout', keyFile, '-out', csr, '-subj', `/CN=${name}`]);
    this.openssl(['x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', String(this.serial++), '-out', certFile, '-days', '2', '-extfile', ext]);
    return this.read(certFile, keyFile);
  }

  private read(certFile: string, keyFile: string): Issued {
    return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
  }

  private openssl(args: string[]): void {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  }

  [Symbol.dispose](): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
