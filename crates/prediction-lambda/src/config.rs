//! The function's own settings (the prediction library reads the rest):
//! which origin the CORS headers allow, and a check that the Lambda
//! runtime's variables are there before the runtime reads them.

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
