//! TLS client set-up (rustls with the `ring` provider) and certificate facts.
//!
//! Trust: Mozilla's roots (webpki-roots) plus the operating system's store,
//! plus an optional per-target PEM bundle (`ca_file`). Verification is on by
//! default; `insecure` turns it off for one target only, still checking that
//! the handshake signatures are valid.

use super::ProbeError;
use crate::model::{ErrorKind, Metrics};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// ALPN identifiers.
pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The default trust store, built once per process and shared.
fn base_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            // A malformed system certificate is skipped, not fatal.
            let _ = roots.add(cert);
        }
        Arc::new(roots)
    });
    Arc::clone(roots)
}

/// Builds a client configuration.
pub fn client_config(
    insecure: bool,
    ca_file: Option<&Path>,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, ProbeError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ProbeError::new(ErrorKind::Tls, format!("TLS set-up: {e}")))?;
    let mut cfg = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider())))
            .with_no_client_auth()
    } else {
        let mut roots = base_roots();
        if let Some(path) = ca_file {
            // Only a target with its own CA pays for a copy of the store.
            let extra = Arc::make_mut(&mut roots);
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| {
                    ProbeError::new(
                        ErrorKind::Config,
                        format!("cannot read CA file {}: {e}", path.display()),
                    )
                })?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    ProbeError::new(
                        ErrorKind::Config,
                        format!("CA file {} is not valid PEM: {e}", path.display()),
                    )
                })?;
            if certs.is_empty() {
                return Err(ProbeError::new(
                    ErrorKind::Config,
                    format!("CA file {} holds no certificate", path.display()),
                ));
            }
            for c in certs {
                extra.add(c).map_err(|e| {
                    ProbeError::new(
                        ErrorKind::Config,
                        format!("CA file {}: {e}", path.display()),
                    )
                })?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}

/// The name to verify and send as SNI.
pub fn server_name(host: &str) -> Result<ServerName<'static>, ProbeError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned()).map_err(|_| {
        ProbeError::new(
            ErrorKind::Config,
            format!("`{bare}` is not a valid TLS server name"),
        )
    })
}

/// Whether a handshake failed because the server took none of the offered
/// application protocols (its `no_application_protocol` alert, or no ALPN
/// answer where one was required).
pub fn refused_alpn(e: &std::io::Error) -> bool {
    matches!(
        e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        Some(
            rustls::Error::NoApplicationProtocol
                | rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol)
        )
    )
}

/// Turns a handshake failure into a result error.
pub fn handshake_error(e: &std::io::Error) -> ProbeError {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        let msg = match inner {
            rustls::Error::InvalidCertificate(c) => {
                format!("certificate rejected: {}", describe_cert_error(c))
            }
            rustls::Error::AlertReceived(a) => format!("the server sent TLS alert {a:?}"),
            rustls::Error::NoApplicationProtocol => {
                "the server supports none of the offered application protocols (ALPN)".into()
            }
            other => format!("TLS handshake failed: {other}"),
        };
        return ProbeError::new(ErrorKind::Tls, msg);
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => ProbeError::new(
            ErrorKind::Tls,
            "the server closed the connection during the TLS handshake (not a TLS port?)",
        ),
        std::io::ErrorKind::InvalidData => {
            ProbeError::new(ErrorKind::Tls, format!("TLS handshake failed: {e}"))
        }
        _ => ProbeError::io("TLS handshake", e),
    }
}

fn describe_cert_error(e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match e {
        C::UnknownIssuer => "issued by an unknown or untrusted authority".into(),
        C::Expired | C::ExpiredContext { .. } => "expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "not valid yet".into(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "not valid for this host name".into()
        }
        C::Revoked => "revoked".into(),
        other => format!("{other:?}"),
    }
}

/// Records protocol, cipher and leaf-certificate facts of a finished handshake.
pub fn record_session(conn: &rustls::ClientConnection, m: &mut Metrics) {
    m.tls_version = conn.protocol_version().map(|v| match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    });
    m.cipher = conn
        .negotiated_cipher_suite()
        .map(|s| iana_suite_name(&format!("{:?}", s.suite())));
    if let Some(leaf) = conn.peer_certificates().and_then(|c| c.first()) {
        if let Some(facts) = cert_facts(leaf.as_ref(), chrono::Utc::now().timestamp()) {
            m.cert_subject = Some(facts.subject);
            m.cert_issuer = Some(facts.issuer);
            m.cert_days_left = Some(facts.days_left);
        }
    }
}

/// A cipher suite's IANA name: rustls calls the TLS 1.3 suites
/// `TLS13_AES_128_GCM_SHA256`, the registry `TLS_AES_128_GCM_SHA256`; the
/// TLS 1.2 names are the registry's already.
pub fn iana_suite_name(rustls_name: &str) -> String {
    match rustls_name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => rustls_name.to_owned(),
    }
}

/// A distinguished name as RFC 4514 writes it: the last RDN first, RDNs
/// joined by `,`, multi-valued RDNs by `+`, the usual short names (`CN`,
/// `O`, `C`, …) or the dotted OID, and special characters escaped.
pub fn rfc4514(name: &x509_parser::x509::X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|a| {
                    let oid = a.attr_type().to_id_string();
                    let key = match oid.as_str() {
                        "2.5.4.3" => "CN".to_owned(),
                        "2.5.4.6" => "C".to_owned(),
                        "2.5.4.7" => "L".to_owned(),
                        "2.5.4.8" => "ST".to_owned(),
                        "2.5.4.9" => "STREET".to_owned(),
                        "2.5.4.10" => "O".to_owned(),
                        "2.5.4.11" => "OU".to_owned(),
                        "0.9.2342.19200300.100.1.25" => "DC".to_owned(),
                        "0.9.2342.19200300.100.1.1" => "UID".to_owned(),
                        _ => oid,
                    };
                    let value = a.as_str().map(escape_dn_value).unwrap_or_else(|_| {
                        let hex: String = a
                            .attr_value()
                            .data
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect();
                        format!("#{hex}")
                    });
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// RFC 4514 §2.4: `"+,;<>\` escaped, and a leading `#` or space or a
/// trailing space.
fn escape_dn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == n && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Subject, issuer and whole days until expiry (negative once expired).
#[derive(Debug, Clone, PartialEq)]
pub struct CertFacts {
    pub subject: String,
    pub issuer: String,
    pub days_left: i64,
}

pub fn cert_facts(der: &[u8], now_unix: i64) -> Option<CertFacts> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let not_after = cert.validity().not_after.timestamp();
    Some(CertFacts {
        subject: rfc4514(cert.subject()),
        issuer: rfc4514(cert.issuer()),
        days_left: (not_after - now_unix).div_euclid(86_400),
    })
}

/// Accepts any certificate chain (per-target `insecure`), but still requires
/// valid handshake signatures so the session is really keyed to that cert.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed certificate: CN=facts.test, issuer CN=Facts CA,
    /// notAfter 2030-01-01T00:00:00Z (1893456000).
    const CERT_PEM: &str = include_str!("testdata/facts.pem");

    #[test]
    fn certificate_facts_from_a_known_certificate() {
        let der = CertificateDer::from_pem_slice(CERT_PEM.as_bytes()).unwrap();
        let not_after = 1_893_456_000;
        let f = cert_facts(der.as_ref(), not_after - 10 * 86_400 - 1).unwrap();
        assert_eq!(f.subject, "CN=facts.test");
        assert_eq!(f.issuer, "CN=Facts CA");
        assert_eq!(f.days_left, 10);
        assert_eq!(
            cert_facts(der.as_ref(), not_after - 10 * 86_400 + 1)
                .unwrap()
                .days_left,
            9
        );
        assert_eq!(
            cert_facts(der.as_ref(), not_after + 1).unwrap().days_left,
            -1,
            "expired"
        );
        assert!(cert_facts(b"not a certificate", 0).is_none());
    }
}
