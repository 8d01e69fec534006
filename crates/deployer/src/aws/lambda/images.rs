//! Which images the app's functions and their versions use, so that old
//! images are deleted only when no version needs them.

use super::*;
use crate::aws::permissions::{Declared, Scope, call};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
// ListFunctions authorizes on no resource (Service Authorization Reference,
// AWS Lambda); the other stages' functions are read for their images.
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call("ListFunctions", "lambda:ListFunctions", Scope::Any),
        call("GetFunction", "lambda:GetFunction", Scope::AppFunctions),
        call(
            "ListVersionsByFunction",
            "lambda:ListVersionsByFunction",
            Scope::AppFunctions,
        ),
    ],
};

/// The container-image functions of the app: those named `{app}-...`
/// (`prefix`). Only these are read further, so `destroy` and `up` never
/// call GetFunction on other teams' functions, which the deployer may not
/// be allowed to read (and which would cost one call each).
pub(super) async fn app_functions(client: &Client, prefix: &str) -> Result<Vec<String>, AwsError> {
    let mut names = Vec::new();
    let mut marker = None;
    loop {
        let page = client
            .list_functions()
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|err| aws_error("ListFunctions", prefix, err))?;
        names.extend(
            page.functions()
                .iter()
                .filter(|f| f.package_type().is_none_or(|t| *t == PackageType::Image))
                .filter_map(|f| f.function_name())
                .filter(|name| name.starts_with(prefix))
                .map(str::to_string),
        );
        match page.next_marker() {
            Some(next) if !next.is_empty() => marker = Some(next.to_string()),
            _ => break,
        }
    }
    Ok(names)
}

/// The image of a function or version ([`code_image`]); `None` when it is
/// gone (another deploy may delete it meanwhile) or the deployer may not
/// read it: a function named like the app's that the deployer cannot read
/// is not one it deployed. Unlike [`read_function`], it reads no tags.
pub(super) async fn image_of(
    client: &Client,
    name: &str,
    qualifier: Option<&str>,
) -> Result<Option<String>, AwsError> {
    match get_function(client, name, qualifier).await {
        Ok(answer) => Ok(answer.code().and_then(code_image)),
        Err(err) => match aws_error("GetFunction", name, err) {
            err if matches!(err.kind, ErrorKind::NotFound | ErrorKind::AccessDenied) => Ok(None),
            err => Err(err),
        },
    }
}

/// The app's functions (named with `prefix`, other than `except`) whose
/// image is in the repository at `repository_uri`, by name: the repository
/// is still in use while any is left. Zip functions cannot use it and are
/// skipped.
pub async fn functions_using_repository(
    client: &Client,
    prefix: &str,
    repository_uri: &str,
    except: &str,
) -> Result<Vec<String>, AwsError> {
    let mut users = Vec::new();
    for name in app_functions(client, prefix).await? {
        if name == except {
            continue;
        }
        if let Some(image) = image_of(client, &name, None).await?
            && image_in_repository(&image, repository_uri)
        {
            users.push(name);
        }
    }
    Ok(users)
}

/// The digests of the repository's images that a function of the app
/// (named with `prefix`) uses, in `$LATEST` or in any published version:
/// any version may be an alias's target, or a rollback's.
pub async fn images_in_use(
    client: &Client,
    prefix: &str,
    repository_uri: &str,
) -> Result<BTreeSet<String>, AwsError> {
    let mut digests = BTreeSet::new();
    for name in app_functions(client, prefix).await? {
        let versions = match list_versions(client, &name).await {
            Ok(versions) => versions,
            Err(err) if matches!(err.kind, ErrorKind::NotFound | ErrorKind::AccessDenied) => {
                continue;
            }
            Err(err) => return Err(err),
        };
        let qualifiers =
            std::iter::once(None).chain(versions.iter().map(|v| Some(v.version.as_str())));
        for qualifier in qualifiers {
            if let Some(image) = image_of(client, &name, qualifier).await?
                && image_in_repository(&image, repository_uri)
                && let Some((_, digest)) = image.split_once('@')
            {
                digests.insert(digest.to_string());
            }
        }
    }
    Ok(digests)
}

/// Whether `image_uri` (by tag or by digest) names an image of the
/// repository at `repository_uri` (and not of one whose name only starts
/// the same).
pub fn image_in_repository(image_uri: &str, repository_uri: &str) -> bool {
    image_uri
        .strip_prefix(repository_uri)
        .is_some_and(|rest| rest.starts_with('@') || rest.starts_with(':'))
}
