//! Names derived from cluster identity (cluster ID, network name, public hosts) and the stable
//! short hash used in ServiceEntry names.

/// `<clusterDomain with "." → "-">-<adler32 decimal of clusterUUID>` (as Deckhouse's `istioClusterID`).
pub fn cluster_id(cluster_domain: &str, cluster_uuid: &str) -> String {
    let sum = adler2::adler32_slice(cluster_uuid.as_bytes());
    format!("{}-{}", cluster_domain.replace('.', "-"), sum)
}

/// `network-<clusterID>`.
pub fn network_name(cluster_id: &str) -> String {
    format!("network-{cluster_id}")
}

/// Public host of a component from `global.modules.publicDomainTemplate` (`%s.example.com`).
pub fn public_host(template: &str, component: &str) -> String {
    template.replace("%s", component)
}

/// 32-bit FNV-1a of `data`.
pub fn fnv32a(data: &[u8]) -> u32 {
    const_fnv1a_hash::fnv1a_hash_32(data, None)
}

/// Kubernetes' `SafeEncodeString` alphabet applied to the decimal digits of a number: a short,
/// stable, vowel-free suffix (as Deckhouse names merged ServiceEntries).
pub fn safe_encode(n: u32) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    n.to_string()
        .bytes()
        .map(|b| ALPHABET[(b as usize) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_matches_sprig() {
        // sprig's adler32sum("deadbeef-mycluster") — Adler-32 of the bytes, printed in decimal.
        assert_eq!(adler2::adler32_slice(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(
            cluster_id("cluster.local", "Wikipedia"),
            "cluster-local-300286872"
        );
        assert_eq!(network_name("a-1"), "network-a-1");
    }

    #[test]
    fn fnv_and_encoding_are_stable() {
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        assert_eq!(safe_encode(0), "4");
        assert_eq!(safe_encode(1234), "5678");
    }

    #[test]
    fn public_host_substitutes() {
        assert_eq!(
            public_host("%s.example.com", "istio-api-proxy"),
            "istio-api-proxy.example.com"
        );
    }
}
