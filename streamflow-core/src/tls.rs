//! TLS for the connectors — PostgreSQL and Kafka — as rustls client configurations, with ring
//! as the only crypto provider. Three ways to trust a server, as libpq names them:
//! encrypted only (`require`), a certificate signed by a trusted authority (`verify-ca`), and
//! that certificate naming the host connected to (`verify-full`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::Error;

/// What a server's certificate must prove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// Nothing: the connection is encrypted, the server not authenticated.
    Nothing,
    /// That an authority trusted signed it, whatever host it names.
    Authority,
    /// That, and that it names the host connected to.
    Host,
}

/// How to set up TLS to a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsOptions {
    /// What the server's certificate must prove.
    pub verify: Verify,
    /// The authorities trusted, as a PEM file; `None` for the system's.
    pub ca_file: Option<PathBuf>,
}

impl TlsOptions {
    /// Verification of the host against the system's authorities, or those of `ca_file`.
    pub fn verified(ca_file: Option<PathBuf>) -> TlsOptions {
        TlsOptions { verify: Verify::Host, ca_file }
    }

    /// A rustls client configuration for these options.
    pub fn client_config(&self) -> Result<ClientConfig, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::configuration("cannot set up TLS").caused_by(e))?;
        let config = match self.verify {
            Verify::Nothing => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
                .with_no_client_auth(),
            Verify::Authority | Verify::Host => {
                let roots = Arc::new(self.roots()?);
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| Error::configuration("cannot set up TLS verification").caused_by(e))?;
                let verifier: Arc<dyn ServerCertVerifier> = match self.verify {
                    Verify::Host => webpki,
                    _ => Arc::new(AnyHost(webpki)),
                };
                builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth()
            }
        };
        Ok(config)
    }

    fn roots(&self) -> Result<RootCertStore, Error> {
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(file) => {
                for cert in read_certificates(file)? {
                    roots.add(cert).map_err(|e| {
                        Error::configuration(format!("{} holds a certificate rustls cannot use", file.display()))
                            .caused_by(e)
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    // A system certificate rustls cannot parse is left out, as other clients do.
                    let _ = roots.add(cert);
                }
            }
        }
        if roots.is_empty() {
            let source = self.ca_file.as_ref().map_or("the system".to_owned(), |f| f.display().to_string());
            return Err(Error::configuration(format!("no certificate authority found in {source}")));
        }
        Ok(roots)
    }
}

/// The certificates of a PEM file.
fn read_certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(file)
        .map_err(|e| Error::configuration(format!("cannot read the certificates of {}", file.display())).caused_by(e))?
        .collect();
    let certs = certs
        .map_err(|e| Error::configuration(format!("{} is not a PEM certificate file", file.display())).caused_by(e))?;
    if certs.is_empty() {
        return Err(Error::configuration(format!("{} holds no certificate", file.display())));
    }
    Ok(certs)
}

/// A verifier that checks the handshake's signatures but not who signed the certificate.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The authority's verification without the host's: `verify-ca`.
#[derive(Debug)]
struct AnyHost(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHost {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            verified => verified,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_authority_file_is_a_clear_error() {
        let missing = TlsOptions::verified(Some("/nonexistent/ca.pem".into())).client_config().unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/ca.pem"), "{missing}");
        let dir = std::env::temp_dir().join(format!("streamflow-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let error = TlsOptions::verified(Some(empty.clone())).client_config().unwrap_err();
        assert!(error.to_string().contains("holds no certificate"), "{error}");
        assert!(TlsOptions { verify: Verify::Nothing, ca_file: None }.client_config().is_ok());
    }
}
