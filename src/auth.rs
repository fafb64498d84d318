//! Authentication (JWT) and what a request may do.
//!
//! Off unless a secret or a public key is configured. When on, every request carries a
//! JWT (HS256 with a shared secret, or RS256/ES256 with a public key), checked for
//! signature, `exp`, `nbf` and, when configured, `iss` and `aud`. Its claims become an
//! [`Access`]: `scope` (`read` and/or `write`, a space-separated string or a list) and
//! an optional list of `collections` the token is limited to.
//!
//! Transports turn a credential into an [`Access`] once ([`Authenticator::authenticate`])
//! and put it in the GraphQL context; resolvers ask it, never the token.

use std::{collections::HashSet, path::Path};

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::error::{Error, Result};

/// What one request may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// May read records, pages, the change log, and subscribe.
    pub read: bool,
    /// May create, update, patch and delete.
    pub write: bool,
    /// May read `/metrics` (scope `metrics`): the log head and request counts tell of
    /// every collection's activity.
    pub metrics: bool,
    /// Limited to these collections; `None` means all.
    pub collections: Option<HashSet<String>>,
    /// When the credential stops being valid (`None`: never, auth is off).
    pub expires_at: Option<DateTime<Utc>>,
    /// Who the credential names (the token's `sub`), if it names anyone.
    pub subject: Option<String>,
}

impl Access {
    /// Everything, as when authentication is off.
    pub fn full() -> Self {
        Self {
            read: true,
            write: true,
            metrics: true,
            collections: None,
            expires_at: None,
            subject: None,
        }
    }

    /// Whether `other` names the same caller with the same rights (whenever each
    /// expires).
    pub fn same_rights(&self, other: &Access) -> bool {
        self.read == other.read
            && self.write == other.write
            && self.metrics == other.metrics
            && self.collections == other.collections
            && self.subject == other.subject
    }

    /// The rights [`Access::same_rights`] compares, as text: equal for equal rights.
    pub fn rights_key(&self) -> String {
        let mut collections: Option<Vec<&String>> =
            self.collections.as_ref().map(|c| c.iter().collect());
        if let Some(c) = &mut collections {
            c.sort();
        }
        serde_json::json!([
            self.read,
            self.write,
            self.metrics,
            collections,
            self.subject
        ])
        .to_string()
    }

    /// Whether `collection` is within the token's collections.
    pub fn allows(&self, collection: &str) -> bool {
        self.collections
            .as_ref()
            .is_none_or(|c| c.contains(collection))
    }

    /// `FORBIDDEN` unless the token may read.
    pub fn check_read(&self) -> Result<()> {
        if self.read {
            Ok(())
        } else {
            Err(Error::Forbidden("this token may not read".into()))
        }
    }

    /// `FORBIDDEN` unless the token may write.
    pub fn check_write(&self) -> Result<()> {
        if self.write {
            Ok(())
        } else {
            Err(Error::Forbidden("this token may not write".into()))
        }
    }

    /// `FORBIDDEN` unless `collection` is allowed (for a collection the client named).
    pub fn check_collection(&self, collection: &str) -> Result<()> {
        if self.allows(collection) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "this token may not access collection {collection:?}"
            )))
        }
    }

    /// The collections a query without an explicit collection is limited to, sorted.
    pub fn collection_list(&self) -> Option<Vec<String>> {
        self.collections.as_ref().map(|c| {
            let mut list: Vec<String> = c.iter().cloned().collect();
            list.sort();
            list
        })
    }
}

/// The claims recordsync reads (the signature and `exp`/`nbf`/`iss`/`aud` are checked
/// by the decoder).
#[derive(Debug, Deserialize)]
struct Claims {
    exp: i64,
    /// Any JSON value: issuers that send a number are not refused for it.
    #[serde(default)]
    sub: Option<serde_json::Value>,
    #[serde(default)]
    scope: Option<Scope>,
    /// Absent: every collection. Present, it must be a list of names: `null` is refused
    /// rather than read as "unrestricted".
    #[serde(default, deserialize_with = "present")]
    collections: Option<serde_json::Value>,
}

/// A claim that is present, `null` included (absent ones are `None` by default).
fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// `scope` as a space-separated string or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scope {
    Text(String),
    List(Vec<String>),
}

/// Checks credentials, or lets everything through when authentication is off.
#[derive(Clone)]
pub struct Authenticator {
    /// The key and the checks; shared, since every request clones the authenticator.
    key: Option<std::sync::Arc<(DecodingKey, Validation)>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("enabled", &self.enabled())
            .finish()
    }
}

impl Authenticator {
    /// No authentication: every request gets [`Access::full`].
    pub fn disabled() -> Self {
        Self { key: None }
    }

    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8], issuer: Option<&str>, audience: Option<&str>) -> Self {
        Self::with(
            DecodingKey::from_secret(secret),
            vec![Algorithm::HS256],
            issuer,
            audience,
        )
    }

    /// RS256 or ES256, by the kind of public key in the PEM file at `path`.
    pub fn public_key_file(
        path: &Path,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> anyhow::Result<Self> {
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read JWT public key {}: {e}", path.display()))?;
        let (key, alg) = match DecodingKey::from_rsa_pem(&pem) {
            Ok(key) => (key, Algorithm::RS256),
            Err(_) => (
                DecodingKey::from_ec_pem(&pem).map_err(|e| {
                    anyhow::anyhow!(
                        "{} is neither an RSA nor an EC public key: {e}",
                        path.display()
                    )
                })?,
                Algorithm::ES256,
            ),
        };
        Ok(Self::with(key, vec![alg], issuer, audience))
    }

    fn with(
        key: DecodingKey,
        algorithms: Vec<Algorithm>,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Self {
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        if let Some(iss) = issuer {
            validation.set_issuer(&[iss]);
        }
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Self {
            key: Some(std::sync::Arc::new((key, validation))),
        }
    }

    /// Whether credentials are required.
    pub fn enabled(&self) -> bool {
        self.key.is_some()
    }

    /// The access of a request that presented `authorization` (an `Authorization`
    /// header value, `Bearer <jwt>`), or `UNAUTHENTICATED`.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Access> {
        let Some(checks) = &self.key else {
            return Ok(Access::full());
        };
        let (key, validation) = &**checks;
        let token = authorization
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Unauthenticated("a bearer token is required".into()))?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                // The decoder's own words stay in the log: they describe its internals.
                tracing::debug!(error = %e, "token refused");
                Error::Unauthenticated(
                    match e.kind() {
                        ErrorKind::ExpiredSignature => "the token has expired",
                        ErrorKind::ImmatureSignature => "the token is not valid yet",
                        ErrorKind::InvalidAudience => "the token is for another audience",
                        ErrorKind::InvalidIssuer => "the token is from another issuer",
                        _ => "invalid token",
                    }
                    .into(),
                )
            })?
            .claims;
        let collections = match claims.collections {
            None => None,
            Some(serde_json::Value::Array(names)) => Some(
                names
                    .into_iter()
                    .map(|n| match n {
                        serde_json::Value::String(name) => Ok(name),
                        _ => Err(()),
                    })
                    .collect::<std::result::Result<HashSet<String>, ()>>()
                    .map_err(|()| {
                        Error::Unauthenticated("`collections` must list collection names".into())
                    })?,
            ),
            Some(_) => {
                return Err(Error::Unauthenticated(
                    "`collections` must be a list of collection names; leave it out for all".into(),
                ));
            }
        };
        let scopes: Vec<String> = match claims.scope {
            Some(Scope::Text(s)) => s.split_whitespace().map(str::to_owned).collect(),
            Some(Scope::List(l)) => l,
            None => Vec::new(),
        };
        Ok(Access {
            read: scopes.iter().any(|s| s == "read"),
            write: scopes.iter().any(|s| s == "write"),
            metrics: scopes.iter().any(|s| s == "metrics"),
            collections,
            // An `exp` past what a date can hold is "never", not "no expiry": a token
            // always has one, and `None` means authentication is off.
            expires_at: Some(
                DateTime::from_timestamp(claims.exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC),
            ),
            subject: claims.sub.map(|sub| match sub {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    fn token(claims: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap()
    }

    fn auth() -> Authenticator {
        Authenticator::hs256(b"s3cret", Some("issuer"), Some("recordsync"))
    }

    fn exp(delta: i64) -> i64 {
        Utc::now().timestamp() + delta
    }

    #[test]
    fn claims_become_access() {
        let t = token(
            json!({"exp": exp(60), "iss": "issuer", "aud": "recordsync", "scope": "read write", "collections": ["todos"]}),
        );
        let a = auth().authenticate(Some(&format!("Bearer {t}"))).unwrap();
        assert!(a.read && a.write);
        assert!(a.allows("todos") && !a.allows("notes"));
        let t =
            token(json!({"exp": exp(60), "iss": "issuer", "aud": "recordsync", "scope": ["read"]}));
        let a = auth().authenticate(Some(&format!("Bearer {t}"))).unwrap();
        assert!(a.read && !a.write && a.allows("anything"));
    }

    #[test]
    fn bad_tokens_are_unauthenticated() {
        let cases = [
            None,
            Some("Basic abc".to_owned()),
            Some("Bearer ".to_owned()),
            Some("Bearer not.a.jwt".to_owned()),
            Some(format!(
                "Bearer {}",
                token(
                    json!({"exp": exp(-5), "iss": "issuer", "aud": "recordsync", "scope": "read"})
                )
            )),
            Some(format!(
                "Bearer {}",
                token(
                    json!({"exp": exp(60), "nbf": exp(30), "iss": "issuer", "aud": "recordsync"})
                )
            )),
            Some(format!(
                "Bearer {}",
                token(json!({"exp": exp(60), "iss": "other", "aud": "recordsync"}))
            )),
            Some(format!(
                "Bearer {}",
                token(json!({"exp": exp(60), "iss": "issuer", "aud": "elsewhere"}))
            )),
            Some(format!(
                "Bearer {}",
                token(json!({"iss": "issuer", "aud": "recordsync"}))
            )),
            Some(format!(
                "Bearer {}",
                token(
                    json!({"exp": exp(60), "iss": "issuer", "aud": "recordsync", "scope": "read", "collections": null})
                )
            )),
            Some(format!(
                "Bearer {}",
                token(
                    json!({"exp": exp(60), "iss": "issuer", "aud": "recordsync", "scope": "read", "collections": [1]})
                )
            )),
            Some(format!(
                "Bearer {}",
                encode(
                    &Header::new(Algorithm::HS256),
                    &json!({"exp": exp(60)}),
                    &EncodingKey::from_secret(b"wrong")
                )
                .unwrap()
            )),
        ];
        for header in cases {
            let err = auth().authenticate(header.as_deref()).unwrap_err();
            assert_eq!(err.code(), "UNAUTHENTICATED", "{header:?}");
            // Messages name what is wrong in the token, never the decoder's internals.
            let message = err.to_string();
            assert!(
                !message.contains("Error")
                    && !message.contains("Json")
                    && !message.contains("Base64"),
                "{header:?}: {message}"
            );
        }
    }

    #[test]
    fn disabled_lets_everything_through() {
        assert_eq!(
            Authenticator::disabled().authenticate(None).unwrap(),
            Access::full()
        );
    }
}
