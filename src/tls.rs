//! TLS for the public listeners: HTTPS (and `wss:`) on `http_addr`, MQTT
//! over TLS on the embedded broker's `mqtt_addr`, with one certificate
//! chain and private key from PEM files (`[tls]`, README "TLS").
//!
//! rustls (ring), TLS 1.2 and 1.3, no client certificates. The files are
//! read once at start-up: a missing file, a chain without a certificate or
//! a key rustls cannot use stops the start with the file's name. A renewed
//! certificate takes a restart (a rolling one across a cluster).
//!
//! The handshake runs in the connection's own task, bounded by the
//! header-read timeout (HTTP) or the connect timeout (MQTT): a client that
//! opens a socket and never says hello holds its connection slot until
//! then, never the accept loop.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

/// The `[tls]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// The certificate chain, PEM, the server's certificate first (a file
    /// from Let's Encrypt's `fullchain.pem`, or a self-signed one). Unset:
    /// plain TCP on both listeners.
    pub cert_file: Option<PathBuf>,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1). Set both or neither.
    pub key_file: Option<PathBuf>,
}

/// The certificate and key files of a listener that serves TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Files {
    /// The certificate chain (PEM).
    pub cert: PathBuf,
    /// The private key (PEM).
    pub key: PathBuf,
}

impl Config {
    /// The files to serve TLS with, `None` for plain TCP; an error when
    /// only one of the two is set.
    pub fn files(&self) -> Result<Option<Files>, String> {
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Ok(Some(Files {
                cert: cert.clone(),
                key: key.clone(),
            })),
            (None, None) => Ok(None),
            (Some(_), None) => Err("tls.cert_file is set but tls.key_file is not".into()),
            (None, Some(_)) => Err("tls.key_file is set but tls.cert_file is not".into()),
        }
    }
}

/// The HTTP listener's TLS: the chain and key of `files` (ALPN
/// `http/1.1`: the server speaks HTTP/1.1 with upgrades).
pub fn acceptor(files: &Files) -> Result<TlsAcceptor, String> {
    let certs = read_certs(&files.cert)?;
    let key = read_key(&files.key)?;
    if !key_matches(&certs[0], &key)? {
        return Err(format!(
            "the key in {} is not the key of the first certificate in {}",
            files.key.display(),
            files.cert.display()
        ));
    }
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "{} and {} do not make a usable certificate and key: {e}",
                files.cert.display(),
                files.key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Whether `key` is the private key of `cert`: it signs a message that
/// the certificate's public key verifies. (Without this, a swapped key
/// file starts the server and fails every handshake.)
fn key_matches(
    cert: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
    key: &tokio_rustls::rustls::pki_types::PrivateKeyDer<'_>,
) -> Result<bool, String> {
    use tokio_rustls::rustls::SignatureScheme;
    use webpki::ring as alg;
    let schemes: [(
        SignatureScheme,
        &dyn webpki::types::SignatureVerificationAlgorithm,
    ); 5] = [
        (
            SignatureScheme::ECDSA_NISTP256_SHA256,
            alg::ECDSA_P256_SHA256,
        ),
        (
            SignatureScheme::ECDSA_NISTP384_SHA384,
            alg::ECDSA_P384_SHA384,
        ),
        (SignatureScheme::ED25519, alg::ED25519),
        (
            SignatureScheme::RSA_PSS_SHA256,
            alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA256,
            alg::RSA_PKCS1_2048_8192_SHA256,
        ),
    ];
    let signing = tokio_rustls::rustls::crypto::ring::sign::any_supported_type(key)
        .map_err(|e| format!("the private key cannot sign: {e}"))?;
    let offered: Vec<SignatureScheme> = schemes.iter().map(|(s, _)| *s).collect();
    let Some(signer) = signing.choose_scheme(&offered) else {
        // A key type this check does not know: rustls takes it or not.
        return Ok(true);
    };
    let message = b"hexdash checks that the key is the certificate's";
    let signature = signer
        .sign(message)
        .map_err(|e| format!("the private key cannot sign: {e}"))?;
    let Some((_, verify)) = schemes.iter().find(|(s, _)| *s == signer.scheme()) else {
        return Ok(true);
    };
    let cert = webpki::EndEntityCert::try_from(cert)
        .map_err(|e| format!("the certificate cannot be read: {e}"))?;
    Ok(cert.verify_signature(*verify, message, &signature).is_ok())
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>, String> {
    std::fs::File::open(path)
        .map(BufReader::new)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn read_certs(
    path: &Path,
) -> Result<Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>, String> {
    let certs = rustls_pemfile::certs(&mut open(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(certs)
}

fn read_key(
    path: &Path,
) -> Result<tokio_rustls::rustls::pki_types::PrivateKeyDer<'static>, String> {
    rustls_pemfile::private_key(&mut open(path)?)
        .map_err(|e| format!("{} is not PEM: {e}", path.display()))?
        .ok_or_else(|| format!("{} holds no private key", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

    fn fixture(name: &str) -> PathBuf {
        Path::new(FIXTURES).join(name)
    }

    #[test]
    fn both_files_or_neither() {
        assert_eq!(Config::default().files(), Ok(None));
        let half = Config {
            cert_file: Some("c.pem".into()),
            key_file: None,
        };
        assert!(half.files().unwrap_err().contains("tls.key_file"));
    }

    #[test]
    fn the_fixture_chain_and_key_load() {
        let files = Files {
            cert: fixture("server.pem"),
            key: fixture("server.key"),
        };
        assert!(acceptor(&files).is_ok());
    }

    #[test]
    fn bad_files_are_named() {
        let missing = Files {
            cert: fixture("nope.pem"),
            key: fixture("server.key"),
        };
        let err = acceptor(&missing).err().unwrap();
        assert!(err.contains("nope.pem"), "{err}");
        // A key where the chain should be: no certificate in it.
        let swapped = Files {
            cert: fixture("server.key"),
            key: fixture("server.pem"),
        };
        let err = acceptor(&swapped).err().unwrap();
        assert!(err.contains("no certificate"), "{err}");
        // Another key than the certificate's.
        let mismatched = Files {
            cert: fixture("server.pem"),
            key: fixture("ca.key"),
        };
        assert!(acceptor(&mismatched).is_err());
    }
}
