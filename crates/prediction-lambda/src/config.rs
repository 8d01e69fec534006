//! The function's own settings (the prediction library reads the rest):
//! the CORS policy of its answers, the path it answers, and a check that the Lambda runtime's
//! variables are there before the runtime reads them.

use prediction::LoadError;

use crate::response::Cors;

/// Read once at init, shared by every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionConfig {
    /// `CORS_ALLOW_ORIGIN`: `*`, or the origins allowed to read answers.
    pub cors_allow_origins: Vec<String>,
    /// `CORS_ALLOW_HEADERS`: what a browser may send, for every answer's
    /// `Access-Control-Allow-Headers`.
    pub cors_allow_headers: String,
    /// `API_PATH`: the API's resource (deploy.toml's `[api] path`), the one
    /// path the function answers; `predict` when unset.
    pub api_path: String,
}

impl FunctionConfig {
    /// The origin when `CORS_ALLOW_ORIGIN` is unset or empty.
    pub const DEFAULT_ORIGIN: &'static str = "*";
    /// The headers when `CORS_ALLOW_HEADERS` is unset or empty: what AWS
    /// CDK's `Cors.DEFAULT_HEADERS` allows (JSON bodies, API keys, SigV4).
    /// The deployer passes deploy.toml's list, the one its preflight uses.
    pub const DEFAULT_HEADERS: &'static str = "Content-Type, X-Amz-Date, Authorization, X-Api-Key, X-Amz-Security-Token, X-Amz-User-Agent";
    /// The path when `API_PATH` is unset or empty.
    pub const DEFAULT_PATH: &'static str = "predict";

    /// Reads `CORS_ALLOW_ORIGIN` (`*`, one origin, or several separated by
    /// commas) and `CORS_ALLOW_HEADERS`, with their defaults.
    pub fn from_env() -> Result<FunctionConfig, LoadError> {
        let read = |variable: &str| match std::env::var(variable) {
            Ok(value) => Ok(value),
            Err(std::env::VarError::NotPresent) => Ok(String::new()),
            Err(std::env::VarError::NotUnicode(_)) => Err(LoadError::Setting {
                variable: variable.to_string(),
                message: "is not valid UTF-8".to_string(),
            }),
        };
        FunctionConfig::with_origin(&read("CORS_ALLOW_ORIGIN")?)?
            .with_headers(&read("CORS_ALLOW_HEADERS")?)?
            .with_path(&read("API_PATH")?)
    }

    /// The same answering `path` (`forecast`, slashes around it ignored);
    /// empty keeps the default. (It never reaches a header, and the
    /// deployer checked it in deploy.toml.)
    pub fn with_path(self, path: &str) -> Result<FunctionConfig, LoadError> {
        let path = path.trim().trim_matches('/');
        if path.is_empty() {
            return Ok(self);
        }
        Ok(FunctionConfig {
            api_path: path.to_string(),
            ..self
        })
    }

    /// Checks origins the way `from_env` does; empty means the default.
    pub fn with_origin(origins: &str) -> Result<FunctionConfig, LoadError> {
        no_control_characters("CORS_ALLOW_ORIGIN", origins)?;
        let mut list: Vec<String> = origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect();
        if list.is_empty() || list.iter().any(|o| o == "*") {
            list = vec![Self::DEFAULT_ORIGIN.to_string()];
        }
        Ok(FunctionConfig {
            cors_allow_origins: list,
            cors_allow_headers: Self::DEFAULT_HEADERS.to_string(),
            api_path: Self::DEFAULT_PATH.to_string(),
        })
    }

    /// The same with `headers` allowed (`Content-Type, X-Api-Key`); empty
    /// keeps the default.
    pub fn with_headers(self, headers: &str) -> Result<FunctionConfig, LoadError> {
        no_control_characters("CORS_ALLOW_HEADERS", headers)?;
        let headers = headers.trim();
        if headers.is_empty() {
            return Ok(self);
        }
        Ok(FunctionConfig {
            cors_allow_headers: headers.to_string(),
            ..self
        })
    }

    /// The CORS headers of the answer to a request from `origin` (the
    /// request's `Origin` header). With several allowed origins, an
    /// allowed one is echoed, with `Vary: Origin` so that caches keep one
    /// answer per origin; any other gets the first allowed one, which its
    /// browser then refuses, as it should ("CORS for REST APIs in API
    /// Gateway": with a proxy integration the function writes these).
    pub fn cors(&self, origin: Option<&str>) -> Cors {
        let allow_origin = match self.cors_allow_origins.as_slice() {
            [any] if any == "*" => any.clone(),
            allowed => origin
                .and_then(|o| allowed.iter().find(|a| a.eq_ignore_ascii_case(o.trim())))
                .or(allowed.first())
                .cloned()
                .unwrap_or_else(|| Self::DEFAULT_ORIGIN.to_string()),
        };
        Cors {
            vary: allow_origin != "*",
            allow_origin,
            allow_headers: self.cors_allow_headers.clone(),
        }
    }
}

/// A header value with control characters would corrupt every answer, so
/// refuse it at init where Lambda shows the message.
fn no_control_characters(variable: &str, value: &str) -> Result<(), LoadError> {
    if value.chars().any(|c| c.is_control()) {
        return Err(LoadError::Setting {
            variable: variable.to_string(),
            message: "must not contain control characters (it becomes a header value)".to_string(),
        });
    }
    Ok(())
}

impl Default for FunctionConfig {
    fn default() -> Self {
        FunctionConfig {
            cors_allow_origins: vec![Self::DEFAULT_ORIGIN.to_string()],
            cors_allow_headers: Self::DEFAULT_HEADERS.to_string(),
            api_path: Self::DEFAULT_PATH.to_string(),
        }
    }
}

/// The variables `lambda_runtime` reads at start, which it `expect`s: a
/// missing one would abort the process with a panic instead of a message.
const RUNTIME_VARIABLES: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
];

/// Says which Lambda runtime variable is missing or wrong, if any; `lookup`
/// reads one variable (`std::env::var(..).ok()` in the function).
pub fn check_runtime_environment(lookup: impl Fn(&str) -> Option<String>) -> Result<(), LoadError> {
    for variable in RUNTIME_VARIABLES {
        let value = lookup(variable).unwrap_or_default();
        let problem = if value.trim().is_empty() {
            Some(
                "is not set: this binary runs inside AWS Lambda, or under `deployer invoke --local`",
            )
        } else if variable == "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" && value.parse::<i32>().is_err() {
            Some("must be a whole number of MB")
        } else {
            None
        };
        if let Some(message) = problem {
            return Err(LoadError::Setting {
                variable: variable.to_string(),
                message: message.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lambda_variables(name: &str) -> Option<String> {
        match name {
            "AWS_LAMBDA_RUNTIME_API" => Some("127.0.0.1:9001".to_string()),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => Some("128".to_string()),
            _ => Some("x".to_string()),
        }
    }

    #[test]
    fn runtime_environment_complete() {
        assert!(check_runtime_environment(lambda_variables).is_ok());
    }

    #[test]
    fn runtime_environment_names_what_is_missing() {
        let err = check_runtime_environment(|name| {
            (name != "AWS_LAMBDA_FUNCTION_NAME")
                .then(|| lambda_variables(name))
                .flatten()
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("AWS_LAMBDA_FUNCTION_NAME: is not set"),
            "{err}"
        );
        let err = check_runtime_environment(|name| {
            if name == "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" {
                Some("lots".to_string())
            } else {
                lambda_variables(name)
            }
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("AWS_LAMBDA_FUNCTION_MEMORY_SIZE:"),
            "{err}"
        );
    }

    #[test]
    fn empty_origin_means_any_origin() {
        let config = FunctionConfig::with_origin("  ").unwrap();
        assert_eq!(config.cors_allow_origins, ["*"]);
        assert_eq!(config.cors(Some("https://x.example")).allow_origin, "*");
        assert!(!config.cors(None).vary);
    }

    #[test]
    fn origin_is_kept_trimmed() {
        let config = FunctionConfig::with_origin(" https://example.com ").unwrap();
        assert_eq!(config.cors_allow_origins, ["https://example.com"]);
    }

    #[test]
    fn origin_with_a_newline_is_refused_naming_the_variable() {
        let err = FunctionConfig::with_origin("https://a.example\r\nX-Evil: 1").unwrap_err();
        assert!(err.to_string().starts_with("CORS_ALLOW_ORIGIN:"), "{err}");
        let err = FunctionConfig::default()
            .with_headers("Content-Type\nX-Evil")
            .unwrap_err();
        assert!(err.to_string().starts_with("CORS_ALLOW_HEADERS:"), "{err}");
    }

    #[test]
    fn several_origins_echo_the_allowed_caller_only() {
        let config = FunctionConfig::with_origin("https://a.example, https://b.example").unwrap();
        let b = config.cors(Some("https://b.example"));
        assert_eq!(b.allow_origin, "https://b.example");
        assert!(b.vary);
        // Browsers send the origin lowercased; the comparison does not care.
        assert_eq!(
            config.cors(Some("HTTPS://A.EXAMPLE")).allow_origin,
            "https://a.example"
        );
        // Not allowed, or no Origin at all: the first allowed one.
        assert_eq!(
            config.cors(Some("https://evil.example")).allow_origin,
            "https://a.example"
        );
        assert_eq!(config.cors(None).allow_origin, "https://a.example");
        // `*` among them allows any.
        let any = FunctionConfig::with_origin("https://a.example,*").unwrap();
        assert_eq!(any.cors(Some("https://z.example")).allow_origin, "*");
    }

    #[test]
    fn headers_default_to_cdk_and_follow_the_configuration() {
        assert_eq!(
            FunctionConfig::default().cors(None).allow_headers,
            FunctionConfig::DEFAULT_HEADERS
        );
        for header in [
            "Authorization",
            "X-Amz-Date",
            "X-Amz-Security-Token",
            "X-Api-Key",
            "X-Amz-User-Agent",
        ] {
            assert!(FunctionConfig::DEFAULT_HEADERS.contains(header), "{header}");
        }
        let config = FunctionConfig::default()
            .with_headers(" Content-Type, X-Custom ")
            .unwrap();
        assert_eq!(config.cors(None).allow_headers, "Content-Type, X-Custom");
        let kept = FunctionConfig::default().with_headers("").unwrap();
        assert_eq!(kept, FunctionConfig::default());
    }
}
