//! The function's container image: compile, assemble the build context,
//! hash it, build and push it through bollard.
