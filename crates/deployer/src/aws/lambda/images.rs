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
/// gone (another deploy may delete it meanwhile). Any other error, access
/// denied included, is an error: deletion fails closed, and a function the
/// deployer cannot read may well run one of the repository's images (a
/// `prod` read with `dev`'s rights). Unlike [`read_function`], it reads no
/// tags.
pub(super) async fn image_of(
    client: &Client,
    name: &str,
    qualifier: Option<&str>,
) -> Result<Option<String>, AwsError> {
    match get_function(client, name, qualifier).await {
        Ok(answer) => Ok(answer.code().and_then(code_image)),
        Err(err) => match aws_error("GetFunction", name, err) {
            err if err.kind == ErrorKind::NotFound => Ok(None),
            err => Err(err),
        },
    }
}

/// Whether the function `name`, read as `read`, keeps the repository at
/// `repository_uri` in use: by running one of its images, or by being
/// unreadable (an error counts as in use, and the entry says why).
pub fn repository_user(
    name: &str,
    read: Result<Option<String>, AwsError>,
    repository_uri: &str,
) -> Option<String> {
    match read {
        Ok(Some(image)) if image_in_repository(&image, repository_uri) => Some(name.to_string()),
        Ok(_) => None,
        Err(err) => Some(format!(
            "{name} (cannot be read, so counted as a user: {err})"
        )),
    }
}

/// The app's functions (named with `prefix`, other than `except`) that keep
/// the repository at `repository_uri` in use, by name: the repository is
/// still in use while any is left. Zip functions cannot use it and are
/// skipped. Fails closed: a function that cannot be read is listed as a
/// user ([`repository_user`]), and when the functions cannot be listed at
/// all the one entry says so.
pub async fn functions_using_repository(
    client: &Client,
    prefix: &str,
    repository_uri: &str,
    except: &str,
) -> Vec<String> {
    let names = match app_functions(client, prefix).await {
        Ok(names) => names,
        Err(err) => {
            return vec![format!(
                "the functions named {prefix}* (they cannot be listed, so counted as users: {err})"
            )];
        }
    };
    let mut users = Vec::new();
    for name in names {
        if name == except {
            continue;
        }
        let read = image_of(client, &name, None).await;
        users.extend(repository_user(&name, read, repository_uri));
    }
    users
}

/// The digests of the repository's images that a function of the app
/// (named with `prefix`) uses, in `$LATEST` or in any published version:
/// any version may be an alias's target, or a rollback's. Any error but a
/// function gone meanwhile fails the whole answer, so that no image is
/// deleted on a partial view.
pub async fn images_in_use(
    client: &Client,
    prefix: &str,
    repository_uri: &str,
) -> Result<BTreeSet<String>, AwsError> {
    let mut digests = BTreeSet::new();
    for name in app_functions(client, prefix).await? {
        let versions = match list_versions(client, &name).await {
            Ok(versions) => versions,
            Err(err) if err.kind == ErrorKind::NotFound => continue,
            Err(err) => return Err(in_use_unknown(&name, err)),
        };
        let qualifiers =
            std::iter::once(None).chain(versions.iter().map(|v| Some(v.version.as_str())));
        for qualifier in qualifiers {
            let image = image_of(client, &name, qualifier)
                .await
                .map_err(|err| in_use_unknown(&name, err))?;
            if let Some(image) = image
                && image_in_repository(&image, repository_uri)
                && let Some((_, digest)) = image.split_once('@')
            {
                digests.insert(digest.to_string());
            }
        }
    }
    Ok(digests)
}

/// The error of a function whose images could not be read: every image may
/// be in use, and the message says so.
fn in_use_unknown(name: &str, err: AwsError) -> AwsError {
    AwsError {
        message: format!(
            "{}; which images {name} uses is unknown, so every image counts as in use",
            err.message
        ),
        ..err
    }
}

/// Whether `image_uri` (by tag or by digest) names an image of the
/// repository at `repository_uri` (and not of one whose name only starts
/// the same).
pub fn image_in_repository(image_uri: &str, repository_uri: &str) -> bool {
    image_uri
        .strip_prefix(repository_uri)
        .is_some_and(|rest| rest.starts_with('@') || rest.starts_with(':'))
}
