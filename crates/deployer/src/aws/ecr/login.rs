//! The registry login from GetAuthorizationToken, fetched fresh before
//! each use and never written anywhere.

use super::*;
use crate::aws::permissions::{Declared, Scope, call, implied};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
// GetAuthorizationToken authorizes on no resource ("IAM permissions for
// pushing an image to an Amazon ECR private repository", ECR User Guide);
// the push itself is Docker's, with the token, and needs the rest.
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call(
            "GetAuthorizationToken",
            "ecr:GetAuthorizationToken",
            Scope::Any,
        ),
        implied("ecr:BatchCheckLayerAvailability", Scope::Repository),
        implied("ecr:InitiateLayerUpload", Scope::Repository),
        implied("ecr:UploadLayerPart", Scope::Repository),
        implied("ecr:CompleteLayerUpload", Scope::Repository),
        implied("ecr:PutImage", Scope::Repository),
        implied("ecr:BatchGetImage", Scope::Repository),
    ],
};

/// The registry login for one push. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
    /// The registry host, without `https://`.
    pub server: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("server", &self.server)
            .finish()
    }
}

/// A fresh registry login from GetAuthorizationToken.
pub async fn registry_auth(client: &Client) -> Result<RegistryAuth, AwsError> {
    let answer = client
        .get_authorization_token()
        .send()
        .await
        .map_err(|err| aws_error("GetAuthorizationToken", "registry", err))?;
    let invalid =
        |message: &str| AwsError::invalid_answer("GetAuthorizationToken", "registry", message);
    let data = answer
        .authorization_data()
        .first()
        .ok_or_else(|| invalid("the answer has no authorization data"))?;
    let token = data
        .authorization_token()
        .ok_or_else(|| invalid("the answer has no token"))?;
    let endpoint = data
        .proxy_endpoint()
        .ok_or_else(|| invalid("the answer has no proxy endpoint"))?;
    // The token is base64 of `user:password`; the error never quotes it.
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| invalid("the token is not base64"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid("the token is not UTF-8"))?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| invalid("the token is not `user:password`"))?;
    let server = endpoint
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    Ok(RegistryAuth {
        username: username.to_string(),
        password: password.to_string(),
        server,
    })
}
