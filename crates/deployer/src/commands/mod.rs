//! One module per `deployer` subcommand.
