//! Certificates made per test run (rcgen): a CA, and a server certificate it signs, as DER
//! for rustls and as PEM files for servers and peers (curl, Python, Node).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::{Path, PathBuf};

/// A CA, and a server certificate for some names signed by it.
pub struct Pki {
    /// The CA's certificate (the root a client trusts).
    pub ca: CertificateDer<'static>,
    /// The server's chain: its certificate, then the CA's.
    pub chain: Vec<CertificateDer<'static>>,
    /// The server's private key.
    pub key: PrivateKeyDer<'static>,
    ca_pem: String,
    chain_pem: String,
    key_pem: String,
}

/// Where [`Pki::write`] put the PEM files.
pub struct PemFiles {
    /// The CA's certificate.
    pub ca: PathBuf,
    /// The server's chain.
    pub chain: PathBuf,
    /// The server's key (PKCS#8).
    pub key: PathBuf,
}

/// A new CA and a server certificate for `names` signed by it.
pub fn pki(names: &[&str]) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: with rcgen's default name on both, OpenSSL (curl, Python, Node) takes
    // the server's certificate for self-signed.
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tether test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut server_params = CertificateParams::new(names.clone()).unwrap();
    server_params.distinguished_name = DistinguishedName::new();
    if let Some(name) = names.first() {
        server_params
            .distinguished_name
            .push(DnType::CommonName, name.as_str());
    }
    let server = server_params.signed_by(&server_key, &ca).unwrap();
    Pki {
        ca: ca.der().clone(),
        chain: vec![server.der().clone(), ca.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        ca_pem: ca.pem(),
        chain_pem: format!("{}{}", server.pem(), ca.pem()),
        key_pem: server_key.serialize_pem(),
    }
}

impl Pki {
    /// Writes the PEM files into `dir`, named after `prefix`.
    pub fn write(&self, dir: &Path, prefix: &str) -> PemFiles {
        let files = PemFiles {
            ca: dir.join(format!("{prefix}-ca.pem")),
            chain: dir.join(format!("{prefix}-chain.pem")),
            key: dir.join(format!("{prefix}-key.pem")),
        };
        std::fs::write(&files.ca, &self.ca_pem).unwrap();
        std::fs::write(&files.chain, &self.chain_pem).unwrap();
        std::fs::write(&files.key, &self.key_pem).unwrap();
        files
    }
}
