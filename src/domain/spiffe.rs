//! The SPIFFE trust bundle (JWKS) of a root CA, as served at `public/spiffe-bundle-endpoint`
//! (SPEC §5.1): one `x509-svid` key per certificate, RSA (`n`, `e`) or EC (`crv`, `x`, `y`),
//! with the DER certificate in `x5c`.

use anyhow::{anyhow, bail, Result};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use openssl::bn::BigNumContext;
use openssl::nid::Nid;
use openssl::pkey::Id;
use openssl::x509::X509;
use serde_json::{json, Value};

/// `spiffe_refresh_hint` in seconds (4 weeks, as Deckhouse serves).
pub const REFRESH_HINT: u64 = 2_419_200;

/// The bundle document for every certificate in `root_ca_pem`.
pub fn bundle(root_ca_pem: &str) -> Result<Value> {
    let certs = X509::stack_from_pem(root_ca_pem.as_bytes())
        .map_err(|e| anyhow!("cannot parse the root CA: {e}"))?;
    if certs.is_empty() {
        bail!("the root CA holds no certificate");
    }
    let keys = certs.iter().map(jwk).collect::<Result<Vec<_>>>()?;
    Ok(json!({"spiffe_sequence": 1, "spiffe_refresh_hint": REFRESH_HINT, "keys": keys}))
}

fn jwk(cert: &X509) -> Result<Value> {
    let der = STANDARD.encode(cert.to_der()?);
    let key = cert.public_key()?;
    match key.id() {
        Id::RSA => {
            let rsa = key.rsa()?;
            Ok(json!({
                "kty": "RSA", "use": "x509-svid",
                "e": URL_SAFE_NO_PAD.encode(rsa.e().to_vec()),
                "n": URL_SAFE_NO_PAD.encode(rsa.n().to_vec()),
                "x5c": [der],
            }))
        }
        Id::EC => {
            let ec = key.ec_key()?;
            let group = ec.group();
            let crv = match group.curve_name() {
                Some(Nid::X9_62_PRIME256V1) => "P-256",
                Some(Nid::SECP384R1) => "P-384",
                Some(Nid::SECP521R1) => "P-521",
                _ => bail!("unsupported EC curve in the root CA"),
            };
            let mut ctx = BigNumContext::new()?;
            let (mut x, mut y) = (openssl::bn::BigNum::new()?, openssl::bn::BigNum::new()?);
            ec.public_key()
                .affine_coordinates(group, &mut x, &mut y, &mut ctx)?;
            let len = i32::try_from(group.degree().div_ceil(8))?;
            Ok(json!({
                "kty": "EC", "use": "x509-svid", "crv": crv,
                "x": URL_SAFE_NO_PAD.encode(x.to_vec_padded(len)?),
                "y": URL_SAFE_NO_PAD.encode(y.to_vec_padded(len)?),
                "x5c": [der],
            }))
        }
        _ => bail!("the root CA key is neither RSA nor EC"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::pki;

    #[test]
    fn rsa_root_bundle() {
        let (ca, _) = pki::generate_self_signed_ca("root", pki::Validity::days(30), true).unwrap();
        let b = bundle(&ca).unwrap();
        assert_eq!(b["spiffe_refresh_hint"], 2_419_200);
        let k = &b["keys"][0];
        assert_eq!(
            (k["kty"].as_str(), k["e"].as_str()),
            (Some("RSA"), Some("AQAB"))
        );
        let der = STANDARD.decode(k["x5c"][0].as_str().unwrap()).unwrap();
        assert_eq!(
            X509::from_der(&der).unwrap().to_pem().unwrap(),
            ca.as_bytes()
        );
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(k["n"].as_str().unwrap())
                .unwrap()
                .len(),
            256
        );
        assert!(bundle("not a pem").is_err());
    }
}
