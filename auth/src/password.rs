//! Password hashing with argon2id. The cost is a setting: production uses
//! the OWASP-recommended 19 MiB × 2 passes; tests lower it to stay fast.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

/// The default is argon2's recommended cost (19 MiB, 2 passes).
#[derive(Clone, Debug, Default)]
pub struct Hasher {
    params: Params,
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl Hasher {
    /// `memory_kib` and `passes` are argon2's m and t costs (parallelism 1).
    pub fn new(memory_kib: u32, passes: u32) -> Result<Self, HashError> {
        let params =
            Params::new(memory_kib, passes, 1, None).map_err(|e| HashError(e.to_string()))?;
        Ok(Self { params })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string (`$argon2id$v=19$m=…`) with a fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        self.argon2()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| HashError(e.to_string()))
    }

    /// Whether `password` matches `phc`; a malformed `phc` never matches.
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        self.argon2()
            .verify_password(password.as_bytes(), phc)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = Hasher::new(1024, 1).unwrap();
        let phc = h.hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify("correct horse", &phc));
        assert!(!h.verify("wrong", &phc));
        assert!(!h.verify("correct horse", "not a hash"));
        assert_ne!(phc, h.hash("correct horse").unwrap(), "salts differ");
    }
}
