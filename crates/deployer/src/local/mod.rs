//! A Lambda Runtime API served on loopback, to run the real image or
//! binary with no AWS.
