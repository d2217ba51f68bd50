//! An agent's token, as the gateway keeps it: its SHA-256 only, so neither memory dumps nor
//! the `token_sha256` form of the config hold a usable secret.

use std::path::Path;

/// The SHA-256 of one cluster's agent token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the agent token file {}: {error}", path.display())]
    Read {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("the agent token file {} is empty", path.display())]
    Empty { path: std::path::PathBuf },
    #[error("token_sha256 is not 64 hex digits")]
    Hash,
}

impl TokenDigest {
    /// The digest of `token` as an agent presents it.
    pub fn of(token: &[u8]) -> TokenDigest {
        let d = ring::digest::digest(&ring::digest::SHA256, token);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        TokenDigest(out)
    }

    /// The token in `path` (surrounding whitespace, such as the newline an editor adds, is not
    /// part of it; the agent reads its file the same way).
    pub fn from_file(path: &Path) -> Result<TokenDigest, TokenError> {
        let text = std::fs::read(path).map_err(|error| TokenError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let token = text.trim_ascii();
        if token.is_empty() {
            return Err(TokenError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(TokenDigest::of(token))
    }

    /// `token_sha256` from the config (validated there, checked again here).
    pub fn from_hex(hex: &str) -> Result<TokenDigest, TokenError> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return Err(TokenError::Hash);
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| TokenError::Hash)?;
            out[i] = u8::from_str_radix(text, 16).map_err(|_| TokenError::Hash)?;
        }
        Ok(TokenDigest(out))
    }

    /// Whether `token` is the one this is the digest of, in time independent of where they
    /// differ.
    pub fn matches(&self, token: &[u8]) -> bool {
        let other = TokenDigest::of(token);
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_hash_and_presented_token_agree() {
        let dir = tempfile::tempdir().expect("a dir");
        let path = dir.path().join("t");
        std::fs::write(&path, "s3cret\n").expect("written");
        let from_file = TokenDigest::from_file(&path).expect("read");
        // printf %s s3cret | sha256sum
        let hex = "1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0";
        assert_eq!(Some(from_file), TokenDigest::from_hex(hex).ok());
        assert!(from_file.matches(b"s3cret"));
        assert!(!from_file.matches(b"s3cret\n"));
        assert!(!from_file.matches(b"other"));
        assert!(TokenDigest::from_hex("zz").is_err());
        let upper: String = hex.to_uppercase();
        assert_eq!(
            TokenDigest::from_hex(&upper).ok(),
            TokenDigest::from_hex(hex).ok()
        );
    }

    #[test]
    fn empty_and_missing_files_are_refused_by_name() {
        let dir = tempfile::tempdir().expect("a dir");
        let path = dir.path().join("t");
        std::fs::write(&path, " \n").expect("written");
        assert!(
            TokenDigest::from_file(&path)
                .unwrap_err()
                .to_string()
                .contains("is empty")
        );
        let missing = dir.path().join("missing");
        assert!(
            TokenDigest::from_file(&missing)
                .unwrap_err()
                .to_string()
                .contains("cannot read")
        );
    }
}
