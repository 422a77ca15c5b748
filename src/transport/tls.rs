//! The TLS setup for `https` DSNs: rustls with the Mozilla roots (webpki-roots), HTTP/1.1 by
//! ALPN, and the process's crypto provider, or *ring* when the application installed none.
//!
//! rustls asks libraries to use the provider the application installed for the process
//! (`CryptoProvider::get_default`, see the `CryptoProvider` docs), so an application that chose
//! aws-lc-rs (with its post-quantum key exchange) gets it for its error reports too. Without
//! one, the sink keeps the *ring* provider it always used. rustls 0.23.48 deprecated
//! `crypto::ring::default_provider()` (ring has no post-quantum key exchange) but keeps ring's
//! cipher suites, key-exchange groups and key loading public; they are assembled here with the
//! signature algorithms of webpki's *ring* backend, in the order rustls lists them.

use std::sync::Arc;

use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::crypto::{ring, CryptoProvider, GetRandomFailed, KeyProvider, SecureRandom};
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::SigningKey;
use rustls::SignatureScheme;
use webpki::ring as algs;

/// The Mozilla roots the sink trusts.
pub(super) fn mozilla_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// A client configuration trusting `roots`, or `None` when none can be made (nothing is then
/// sent rather than sent in clear).
pub(super) fn client_config(roots: rustls::RootCertStore) -> Option<Arc<rustls::ClientConfig>> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Some(Arc::new(config))
}

/// The application's provider, else *ring*.
fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(ring_provider()))
}

/// *ring*'s provider, as `crypto::ring::default_provider()` builds it.
pub fn ring_provider() -> CryptoProvider {
    CryptoProvider {
        cipher_suites: ring::DEFAULT_CIPHER_SUITES.to_vec(),
        kx_groups: ring::DEFAULT_KX_GROUPS.to_vec(),
        signature_verification_algorithms: SIGNATURE_ALGORITHMS,
        secure_random: &Ring,
        key_provider: &Ring,
    }
}

/// What webpki can verify with *ring*, and which TLS signature schemes map to which of them
/// (for TLS 1.2 the curve is not fixed by the scheme, for TLS 1.3 it is).
static SIGNATURE_ALGORITHMS: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[
        algs::ECDSA_P256_SHA256,
        algs::ECDSA_P256_SHA384,
        algs::ECDSA_P384_SHA256,
        algs::ECDSA_P384_SHA384,
        algs::ED25519,
        algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        algs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
        algs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
        algs::RSA_PKCS1_2048_8192_SHA256,
        algs::RSA_PKCS1_2048_8192_SHA384,
        algs::RSA_PKCS1_2048_8192_SHA512,
        algs::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
        algs::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
        algs::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    ],
    mapping: &[
        (
            SignatureScheme::ECDSA_NISTP384_SHA384,
            &[algs::ECDSA_P384_SHA384, algs::ECDSA_P256_SHA384],
        ),
        (
            SignatureScheme::ECDSA_NISTP256_SHA256,
            &[algs::ECDSA_P256_SHA256, algs::ECDSA_P384_SHA256],
        ),
        (SignatureScheme::ED25519, &[algs::ED25519]),
        (
            SignatureScheme::RSA_PSS_SHA512,
            &[algs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA384,
            &[algs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA256,
            &[algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA512,
            &[algs::RSA_PKCS1_2048_8192_SHA512],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA384,
            &[algs::RSA_PKCS1_2048_8192_SHA384],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA256,
            &[algs::RSA_PKCS1_2048_8192_SHA256],
        ),
    ],
};

/// *ring*'s random numbers and key loading.
#[derive(Debug)]
struct Ring;

impl SecureRandom for Ring {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        use ::ring::rand::SecureRandom as _;
        ::ring::rand::SystemRandom::new()
            .fill(buf)
            .map_err(|_| GetRandomFailed)
    }
}

impl KeyProvider for Ring {
    fn load_private_key(
        &self,
        key_der: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn SigningKey>, rustls::Error> {
        ring::sign::any_supported_type(&key_der)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    #[allow(deprecated)] // the reference this provider must equal
    fn the_ring_provider_equals_the_one_rustls_deprecated() {
        let ours = ring_provider();
        let theirs = ring::default_provider();
        let show = |p: &CryptoProvider| {
            format!(
                "{:?} {:?} {:?}",
                p.cipher_suites, p.kx_groups, p.signature_verification_algorithms
            )
        };
        assert_eq!(show(&ours), show(&theirs));
        let mut bytes = [0u8; 32];
        ours.secure_random.fill(&mut bytes).unwrap();
        assert_ne!(bytes, [0u8; 32]);
    }

    /// A real handshake against a rustls server with a test CA's certificate for `localhost`,
    /// at each protocol version the sink offers.
    #[tokio::test]
    async fn the_client_config_completes_a_handshake_with_tls_1_3_and_1_2() {
        let ca = CertificateDer::from(&include_bytes!("../../tests/fixtures/tls/ca.der")[..]);
        let leaf = CertificateDer::from(&include_bytes!("../../tests/fixtures/tls/leaf.der")[..]);
        let key =
            PrivatePkcs8KeyDer::from(&include_bytes!("../../tests/fixtures/tls/leaf.key.der")[..]);
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.into_owned()).unwrap();
        let client = tokio_rustls::TlsConnector::from(client_config(roots).unwrap());
        let serve = |versions: &[&'static rustls::SupportedProtocolVersion]| {
            let server = rustls::ServerConfig::builder_with_provider(Arc::new(ring_provider()))
                .with_protocol_versions(versions)
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![leaf.clone().into_owned()],
                    PrivateKeyDer::Pkcs8(key.clone_key()),
                )
                .unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
            async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let served = tokio::spawn(async move {
                    let (tcp, _) = listener.accept().await.unwrap();
                    let mut tls = acceptor.accept(tcp).await.ok()?;
                    let mut got = [0u8; 4];
                    tls.read_exact(&mut got).await.unwrap();
                    tls.write_all(b"pong").await.unwrap();
                    tls.shutdown().await.unwrap();
                    Some(got)
                });
                (addr, served)
            }
        };
        let name = || ServerName::try_from("localhost").unwrap();
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let (addr, served) = serve(&[version]).await;
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut tls = client.connect(name(), tcp).await.unwrap();
            assert_eq!(tls.get_ref().1.protocol_version(), Some(version.version));
            tls.write_all(b"ping").await.unwrap();
            let mut answer = Vec::new();
            tls.read_to_end(&mut answer).await.unwrap();
            assert_eq!(answer, b"pong");
            assert_eq!(served.await.unwrap(), Some(*b"ping"));
        }
        // With the Mozilla roots only, the test CA's certificate is refused.
        let strangers = tokio_rustls::TlsConnector::from(client_config(mozilla_roots()).unwrap());
        let (addr, served) = serve(rustls::DEFAULT_VERSIONS).await;
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let refused = strangers.connect(name(), tcp).await.unwrap_err();
        assert!(refused.to_string().contains("UnknownIssuer"), "{refused}");
        assert_eq!(served.await.unwrap(), None);
    }
}
