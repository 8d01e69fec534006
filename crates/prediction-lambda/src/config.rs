//! The function's own settings (the prediction library reads the rest):
//! which origin the CORS headers allow.

use prediction::LoadError;

/// Read once at init, shared by every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionConfig {
    /// `Access-Control-Allow-Origin` on every answer.
    pub cors_allow_origin: String,
}

impl FunctionConfig {
    /// The origin when `CORS_ALLOW_ORIGIN` is unset or empty.
    pub const DEFAULT_ORIGIN: &'static str = "*";

    /// Reads `CORS_ALLOW_ORIGIN`, defaulting to `*`.
    pub fn from_env() -> Result<FunctionConfig, LoadError> {
        match std::env::var("CORS_ALLOW_ORIGIN") {
            Ok(origin) => FunctionConfig::with_origin(&origin),
            Err(std::env::VarError::NotPresent) => FunctionConfig::with_origin(""),
            Err(std::env::VarError::NotUnicode(_)) => Err(LoadError::Setting {
                variable: "CORS_ALLOW_ORIGIN".to_string(),
                message: "is not valid UTF-8".to_string(),
            }),
        }
    }

    /// Checks an origin the way `from_env` does; empty means the default.
    pub fn with_origin(origin: &str) -> Result<FunctionConfig, LoadError> {
        let origin = origin.trim();
        // A header value with control characters would corrupt every answer,
        // so refuse it at init where Lambda shows the message.
        if origin.chars().any(|c| c.is_control()) {
            return Err(LoadError::Setting {
                variable: "CORS_ALLOW_ORIGIN".to_string(),
                message: "must not contain control characters (it becomes a header value)"
                    .to_string(),
            });
        }
        let origin = if origin.is_empty() {
            Self::DEFAULT_ORIGIN
        } else {
            origin
        };
        Ok(FunctionConfig {
            cors_allow_origin: origin.to_string(),
        })
    }
}

impl Default for FunctionConfig {
    fn default() -> Self {
        FunctionConfig {
            cors_allow_origin: Self::DEFAULT_ORIGIN.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_origin_means_any_origin() {
        assert_eq!(
            FunctionConfig::with_origin("  ").unwrap().cors_allow_origin,
            "*"
        );
    }

    #[test]
    fn origin_is_kept_trimmed() {
        let config = FunctionConfig::with_origin(" https://example.com ").unwrap();
        assert_eq!(config.cors_allow_origin, "https://example.com");
    }

    #[test]
    fn origin_with_a_newline_is_refused_naming_the_variable() {
        let err = FunctionConfig::with_origin("https://a.example\r\nX-Evil: 1").unwrap_err();
        assert!(err.to_string().starts_with("CORS_ALLOW_ORIGIN:"), "{err}");
    }
}
